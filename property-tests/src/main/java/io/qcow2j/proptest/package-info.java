/** A small model-based property testing harness: seeded, reproducible, shrinking. */
package io.qcow2j.proptest;
