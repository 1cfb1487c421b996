package dev.sdserve.job;

/** Public lifecycle of a job. */
public enum JobState {
    QUEUED, ENCODING, DENOISING, DECODING, COMPLETED, CANCELLED, FAILED, REJECTED;

    public boolean terminal() {
        return this == COMPLETED || this == CANCELLED || this == FAILED || this == REJECTED;
    }
}
