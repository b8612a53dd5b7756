package io.qcow2j.engine;

/**
 * Facts about an image {@link Images#create} made: its geometry and where its metadata went.
 *
 * @param size                  virtual size in bytes (the size asked for rounded up to 512)
 * @param clusterSize           bytes per cluster
 * @param l1TableOffset         where the L1 table starts (0 for an empty disk)
 * @param l1Size                entries of the L1 table
 * @param refcountTableOffset   where the refcount table starts
 * @param refcountTableClusters clusters of the refcount table
 * @param refcountBlocks        refcount blocks written
 * @param clusters              clusters in use (all with refcount 1)
 * @param fileSize              bytes of the image file
 */
public record CreatedImage(long size, int clusterSize, long l1TableOffset, long l1Size, long refcountTableOffset,
        long refcountTableClusters, long refcountBlocks, long clusters, long fileSize) {}
