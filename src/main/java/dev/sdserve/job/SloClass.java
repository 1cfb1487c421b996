package dev.sdserve.job;

/** Latency class of a request; each has a default deadline (configurable). */
public enum SloClass {
    INTERACTIVE, STANDARD, BATCH
}
