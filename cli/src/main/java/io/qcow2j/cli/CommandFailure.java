package io.qcow2j.cli;

/** A command failed for a reason the user should read: the message is the whole one-line report. */
class CommandFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;

    CommandFailure(String message) {
        super(message);
    }

    CommandFailure(String message, Throwable cause) {
        super(message, cause);
    }
}
