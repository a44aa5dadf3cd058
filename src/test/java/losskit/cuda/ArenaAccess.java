package losskit.cuda;

/**
 * Test access to the package-private {@link DeviceArena} for tests in other packages (the emulator's
 * {@code losskit.emu.MemoryBugsTest}, through its child-process probe): an arena with exact regions
 * ({@link DeviceArena#EXACT_REGIONS_PROPERTY}) or the product's carved one. The calling thread's current
 * context is the arena's.
 */
public final class ArenaAccess implements AutoCloseable {
    private final DeviceArena arena;

    public ArenaAccess(boolean exactRegions) {
        arena = withExactRegions(exactRegions, DeviceArena::new);
    }

    /** Runs {@code create} with {@link DeviceArena#EXACT_REGIONS_PROPERTY} set as asked, restoring it after. */
    public static <T> T withExactRegions(boolean exactRegions, java.util.function.Supplier<T> create) {
        String before = System.getProperty(DeviceArena.EXACT_REGIONS_PROPERTY);
        System.setProperty(DeviceArena.EXACT_REGIONS_PROPERTY, Boolean.toString(exactRegions));
        try {
            return create.get();
        } finally {
            if (before == null) {
                System.clearProperty(DeviceArena.EXACT_REGIONS_PROPERTY);
            } else {
                System.setProperty(DeviceArena.EXACT_REGIONS_PROPERTY, before);
            }
        }
    }

    public boolean exactRegions() {
        return arena.exactRegions();
    }

    public void reset(long bytes) {
        arena.reset(bytes);
    }

    /** A region's device address. */
    public long take(long bytes) {
        return JCudaInterop.address(arena.take(bytes));
    }

    @Override
    public void close() {
        arena.free();
    }
}
