package dev.sdserve.cli;

import java.util.List;

/** Test access to {@link SdServeMain}'s package-private decisions from other packages' tests. */
public final class SdServeMainAccess {
    private SdServeMainAccess() {
    }

    public static boolean runsEngine(List<String> args) {
        return SdServeMain.runsEngine(args);
    }
}
