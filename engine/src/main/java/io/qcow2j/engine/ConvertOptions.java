package io.qcow2j.engine;

import java.util.Objects;
import java.util.function.DoubleConsumer;

/**
 * How {@link Images#convert} copies: {@code qemu-img convert}'s flags.
 *
 * @param compress     {@code -c}: every cluster written compressed (those that do not shrink are stored plain)
 * @param targetExists {@code -n}: write into an existing image instead of creating one
 * @param targetIsZero {@code --target-is-zero}: with {@code targetExists}, the target reads as zeros already,
 *                     so zero ranges need not be written
 * @param topOnly      {@code -B}: copy only what the sources' top images hold; ranges they leave to their
 *                     backing files stay unallocated (the new backing file must read as their backing chain)
 * @param sparseSize   {@code -S}: zero runs of at least this many bytes (aligned) are not written; 0 writes
 *                     everything, zeros included (a fully allocated output)
 * @param parallel     {@code -m}: requests in flight (worker threads), 1 to 16
 * @param outOfOrder   {@code -W}: writes may complete out of order (else they are made in guest order, so the
 *                     output's clusters lie in guest order, as qemu-img's)
 * @param cacheMode    {@code -t}: the target's cache mode
 * @param progress     told the percentage done, from the workers' threads
 */
public record ConvertOptions(boolean compress, boolean targetExists, boolean targetIsZero, boolean topOnly,
        long sparseSize, int parallel, boolean outOfOrder, CacheMode cacheMode, DoubleConsumer progress) {
    /** qemu-img's default {@code -S}. */
    public static final long DEFAULT_SPARSE_SIZE = 4096;
    /** qemu-img's default {@code -m}. */
    public static final int DEFAULT_PARALLEL = 8;
    /** qemu-img's largest {@code -m}. */
    public static final int MAX_PARALLEL = 16;

    public ConvertOptions {
        Objects.requireNonNull(cacheMode);
        Objects.requireNonNull(progress);
        if (parallel < 1 || parallel > MAX_PARALLEL) {
            throw new IllegalArgumentException("Invalid number of coroutines. Allowed number of coroutines is"
                    + " between 1 and " + MAX_PARALLEL);
        }
        if (sparseSize < 0) {
            throw new IllegalArgumentException("Invalid buffer size for sparse output specified");
        }
        if (targetIsZero && !targetExists) {
            throw new IllegalArgumentException("--target-is-zero requires use of -n flag");
        }
    }

    public static ConvertOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link ConvertOptions}; starts from qemu-img's defaults (cache {@code unsafe}, as convert). */
    public static final class Builder {
        private boolean compress;
        private boolean targetExists;
        private boolean targetIsZero;
        private boolean topOnly;
        private long sparseSize = DEFAULT_SPARSE_SIZE;
        private int parallel = DEFAULT_PARALLEL;
        private boolean outOfOrder;
        private CacheMode cacheMode = CacheMode.UNSAFE;
        private DoubleConsumer progress = p -> { };

        public Builder compress(boolean on) {
            compress = on;
            return this;
        }

        public Builder targetExists(boolean on) {
            targetExists = on;
            return this;
        }

        public Builder targetIsZero(boolean on) {
            targetIsZero = on;
            return this;
        }

        public Builder topOnly(boolean on) {
            topOnly = on;
            return this;
        }

        public Builder sparseSize(long bytes) {
            sparseSize = bytes;
            return this;
        }

        public Builder parallel(int requests) {
            parallel = requests;
            return this;
        }

        public Builder outOfOrder(boolean on) {
            outOfOrder = on;
            return this;
        }

        public Builder cacheMode(CacheMode mode) {
            cacheMode = mode;
            return this;
        }

        public Builder progress(DoubleConsumer percent) {
            progress = percent;
            return this;
        }

        public ConvertOptions build() {
            return new ConvertOptions(compress, targetExists, targetIsZero, topOnly, sparseSize, parallel, outOfOrder,
                    cacheMode, progress);
        }
    }
}
