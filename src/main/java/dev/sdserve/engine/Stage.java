package dev.sdserve.engine;

/** The three kinds of engine call an iteration can plan. */
public enum Stage {
    ENCODE, DENOISE, DECODE
}
