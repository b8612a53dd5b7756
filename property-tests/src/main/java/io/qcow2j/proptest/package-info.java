/**
 * A small model-based (stateful) property testing harness: seeded and reproducible, with delta-debugging
 * shrinking and statistics. Independent of any test framework: failures are {@link AssertionError}s.
 *
 * <ul>
 *   <li>{@link io.qcow2j.proptest.StatefulProperty}: random sequences of {@link io.qcow2j.proptest.Action}s run
 *       against a system under test and a reference model ({@link io.qcow2j.proptest.Instance}), named invariants
 *       after every action; {@code StatefulProperty.<S, M>builder(name)...check()}.</li>
 *   <li>{@link io.qcow2j.proptest.Property}: {@code Property.forAll(name, generator, check)} for stateless
 *       properties.</li>
 *   <li>{@link io.qcow2j.proptest.Result}: the statistics a passing property returns (actions per name, sequence
 *       lengths, user labels counted through {@link io.qcow2j.proptest.Context#count}).</li>
 *   <li>{@link io.qcow2j.proptest.PropertyFailure}: what a failing property throws: the seed, the original and the
 *       shrunk actions, and how to replay them.</li>
 * </ul>
 *
 * <p>System properties: {@code -Dqcow2j.seed=S} replays seed S (in every property, or only in the one named
 * by {@code -Dqcow2j.property=NAME}); {@code -Dqcow2j.tries=N} sets the number of sequences of every property.
 * See {@code property-tests/README.md}.
 */
package io.qcow2j.proptest;
