package dev.sdserve.ops;

import dev.sdserve.cli.SdServeMainAccess;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class HugePagesTest {
    private static final Optional<String> MADVISE = Optional.of("madvise");

    @Test
    void readsTheSelectedThpMode() {
        assertEquals(MADVISE, HugePages.thpMode("always [madvise] never\n"));
        assertEquals(Optional.of("always"), HugePages.thpMode("[always] madvise never"));
        assertEquals(Optional.of("never"), HugePages.thpMode("always madvise [never]"));
        assertEquals(Optional.empty(), HugePages.thpMode("always madvise never"));
        assertEquals(Optional.empty(), HugePages.thpMode(null));
    }

    @Test
    void findsTheTunableAmongOthers() {
        assertEquals(Optional.empty(), HugePages.tunable(Map.of()));
        assertEquals(Optional.of("1"), HugePages.tunable(Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")));
        assertEquals(Optional.of("0"), HugePages.tunable(Map.of("GLIBC_TUNABLES",
                "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=0")));
        assertEquals(Optional.empty(), HugePages.tunable(Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlbx=1")));
    }

    @Test
    void relaunchesOnlyWhereTheTunableWouldHelpAndIsNotGiven() {
        Map<String, String> add = HugePages.relaunchEnvironment(Map.of(), MADVISE, null, 42).orElseThrow();
        assertEquals("glibc.malloc.hugetlb=1", add.get("GLIBC_TUNABLES"));
        assertEquals("42", add.get(HugePages.RELAUNCHED));
        assertEquals("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", HugePages.relaunchEnvironment(
                Map.of("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"), MADVISE, "auto", 1).orElseThrow()
                .get("GLIBC_TUNABLES"), "the user's other tunables are kept");
        // the user's own value, whatever it is, wins; a relaunched child never relaunches again
        assertTrue(HugePages.relaunchEnvironment(Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0"), MADVISE, null, 1)
                .isEmpty());
        assertTrue(HugePages.relaunchEnvironment(Map.of(HugePages.RELAUNCHED, "7"), MADVISE, null, 1).isEmpty());
        // THP always: large mappings already get huge pages; never / not Linux: none to get
        assertTrue(HugePages.relaunchEnvironment(Map.of(), Optional.of("always"), null, 1).isEmpty());
        assertTrue(HugePages.relaunchEnvironment(Map.of(), Optional.of("never"), null, 1).isEmpty());
        assertTrue(HugePages.relaunchEnvironment(Map.of(), Optional.empty(), null, 1).isEmpty());
        assertTrue(HugePages.relaunchEnvironment(Map.of(), MADVISE, "off", 1).isEmpty());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HugePages.relaunchEnvironment(Map.of(), MADVISE, "yes", 1));
        assertTrue(e.getMessage().contains("sdserve.hugePages"), e.getMessage());
    }

    @Test
    void theServerSaysHowToTurnThemOn() {
        String note = HugePages.serverNote(Map.of(), MADVISE, null).orElseThrow();
        assertTrue(note.contains("GLIBC_TUNABLES=glibc.malloc.hugetlb=1"), note);
        assertTrue(HugePages.serverNote(Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1"), MADVISE, null).isEmpty());
        assertTrue(HugePages.serverNote(Map.of(), MADVISE, "off").isEmpty());
        assertTrue(HugePages.serverNote(Map.of(), Optional.of("always"), null).isEmpty());
    }

    @Test
    void parsesTheRollup() {
        String rollup = """
                00400000-7ffd00000000 ---p 00000000 00:00 0                              [rollup]
                Rss:             6534816 kB
                Anonymous:       6400000 kB
                AnonHugePages:   5894144 kB
                """;
        long[] r = HugePages.parseRollup(rollup).orElseThrow();
        assertEquals(6400000L * 1024, r[0]);
        assertEquals(5894144L * 1024, r[1]);
        assertTrue(HugePages.parseRollup("Rss: 1 kB\n").isEmpty());
    }

    @Test
    void onlyTheOneShotEngineCommandsRelaunch() {
        assertTrue(SdServeMainAccess.runsEngine(List.of("generate", "a cat")));
        assertFalse(SdServeMainAccess.runsEngine(List.of("generate", "a cat", "--server", "localhost:9000")));
        assertFalse(SdServeMainAccess.runsEngine(List.of("generate", "a cat", "--server=localhost:9000")));
        assertTrue(SdServeMainAccess.runsEngine(List.of("bench", "--cases", "te2")));
        assertTrue(SdServeMainAccess.runsEngine(List.of("conformance", "--golden", "x")));
        assertFalse(SdServeMainAccess.runsEngine(List.of("bench", "--help")));
        assertFalse(SdServeMainAccess.runsEngine(List.of("simulate")));
        assertFalse(SdServeMainAccess.runsEngine(List.of("loadgen", "--soak")));
        assertFalse(SdServeMainAccess.runsEngine(List.of()));
    }

    /**
     * The real thing on this machine: a child JVM run with the relaunch environment puts a TensorFlow tensor on huge
     * pages, one run without it does not, and the child's exit status comes back.
     */
    @Test
    void aRelaunchedChildHasTensorFlowMemoryOnHugePages() throws Exception {
        assumeTrue(HugePages.thpMode().equals(MADVISE), "needs Linux with THP mode madvise");
        assumeTrue(Files.exists(Path.of("/proc/self/smaps_rollup")), "needs /proc/self/smaps_rollup");
        Map<String, String> add = HugePages.relaunchEnvironment(Map.of(), MADVISE, null,
                ProcessHandle.current().pid()).orElseThrow();
        Probe on = probe(add, 0);
        Probe off = probe(Map.of(), 5);
        assertEquals(0, on.exit, on.text);
        assertEquals(5, off.exit, "the child's exit status is returned: " + off.text);
        assertTrue(on.text.contains("tunables=glibc.malloc.hugetlb=1"), on.text);
        assertTrue(on.text.contains("relaunched=" + ProcessHandle.current().pid()), on.text);
        assertTrue(on.text.contains("sum=1.5"), on.text);
        assertTrue(on.anonHuge >= 32L << 20, "at least half of the 64 MiB tensor on huge pages: " + on.text);
        assertTrue(off.anonHuge < 32L << 20, "without the tunable, the tensor stays on 4 KiB pages: " + off.text);
    }

    private record Probe(int exit, String text, long anonHuge) {
    }

    private static Probe probe(Map<String, String> add, int exit) throws Exception {
        Path out = Files.createTempFile("hugepages-probe", ".txt");
        try {
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-Xmx256m", "-cp", System.getProperty("java.class.path")));
            String cache = System.getProperty("org.bytedeco.javacpp.cachedir");
            if (cache != null) {
                cmd.add(2, "-Dorg.bytedeco.javacpp.cachedir=" + cache);
            }
            cmd.addAll(List.of(HugePagesProbe.class.getName(), Integer.toString(exit)));
            // the child's output goes to a file: run() inherits this JVM's streams, so the shell redirects them
            List<String> shell = List.of("/bin/sh", "-c", "exec \"$@\" > '" + out + "' 2>&1", "probe");
            List<String> full = new ArrayList<>(shell);
            full.addAll(cmd);
            Map<String, String> env = new java.util.HashMap<>(add);
            if (!add.containsKey("GLIBC_TUNABLES")) {
                env.put("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0"); // the control, whatever this JVM was given
            }
            int code = HugePages.run(full, env);
            String text = Files.readString(out);
            long huge = text.lines().filter(l -> l.startsWith("anonHuge=")).mapToLong(l -> Long.parseLong(l.substring(9)))
                    .findFirst().orElse(-1);
            return new Probe(code, text, huge);
        } finally {
            Files.deleteIfExists(out);
        }
    }
}
