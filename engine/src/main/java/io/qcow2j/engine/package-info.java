/** The qcow2 format, the metadata cache and the image driver. */
package io.qcow2j.engine;
