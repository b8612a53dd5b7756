/** JMH benchmarks. */
package io.qcow2j.bench;
