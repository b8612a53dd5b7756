package io.qcow2j.proptest.driver;

/** The model of {@link ImageModelProperties}: the guest disk and the range the last request touched. */
final class DiskState {
    final DiskConfig config;
    final GuestModel guest;
    long lastStart;
    long lastEnd;

    DiskState(DiskConfig config, GuestModel guest) {
        this.config = config;
        this.guest = guest;
    }

    long size() {
        return guest.size();
    }
}
