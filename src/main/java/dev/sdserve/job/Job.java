package dev.sdserve.job;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A submitted generation: its resolved request, its public state, and its watchers. The scheduler publishes events;
 * any number of watchers subscribe, and a late joiner first gets the state so far (the last Queued, Started, every
 * step — the latest with its previews — and the end). Publishing never blocks on a watcher.
 */
public final class Job {
    private final String id;
    private final ResolvedRequest request;
    private final boolean detached;
    private final long createdMillis;
    private final CopyOnWriteArrayList<Mailbox> watchers = new CopyOnWriteArrayList<>();

    private volatile JobState state = JobState.QUEUED;
    private JobEvent.Queued lastQueued;
    private JobEvent.Started started;
    private JobEvent.Step lastStep;
    /** Every step so far without its previews, for watchers that join late (a few bytes a step). */
    private final List<JobEvent.Step> earlierSteps = new ArrayList<>();
    private JobEvent terminal;
    private volatile boolean cancelRequested;
    private List<Runnable> endListeners; // guarded by this; null once run


    public Job(String id, ResolvedRequest request, boolean detached, long createdMillis) {
        this.id = id;
        this.request = request;
        this.detached = detached;
        this.createdMillis = createdMillis;
    }

    public String id() {
        return id;
    }

    public ResolvedRequest request() {
        return request;
    }

    /** Submitted asynchronously: a watcher going away does not cancel it. */
    public boolean detached() {
        return detached;
    }

    public long createdMillis() {
        return createdMillis;
    }

    public JobState state() {
        return state;
    }

    public void setState(JobState s) {
        if (!state.terminal()) {
            state = s;
        }
    }

    public boolean cancelRequested() {
        return cancelRequested;
    }

    /** Asks the scheduler to drop the job before its next step. */
    public void requestCancel() {
        cancelRequested = true;
    }

    public synchronized JobEvent.Step lastStep() {
        return lastStep;
    }

    public synchronized JobEvent terminalEvent() {
        return terminal;
    }

    public synchronized JobEvent.Queued lastQueued() {
        return lastQueued;
    }

    /**
     * Runs {@code listener} once when the job ends (completed, failed or cancelled: when its terminal event is
     * published, before watchers get it), or right away if it has already ended. For resources held for the
     * job's lifetime, such as an API key's concurrency slot. A listener must be quick and must not throw.
     */
    public void onEnd(Runnable listener) {
        synchronized (this) {
            if (terminal == null) {
                if (endListeners == null) {
                    endListeners = new ArrayList<>(1);
                }
                endListeners.add(listener);
                return;
            }
        }
        listener.run();
    }

    /** Publishes an event to every watcher. Events after the terminal one are ignored. */
    public void publish(JobEvent e) {
        List<Runnable> ending = null;
        synchronized (this) {
            if (terminal != null) {
                return;
            }
            if (e instanceof JobEvent.Queued q) {
                lastQueued = q;
            } else if (e instanceof JobEvent.Started s) {
                started = s;
            } else if (e instanceof JobEvent.Step s) {
                if (lastStep != null) {
                    earlierSteps.add(lastStep.withoutPreviews());
                }
                lastStep = s;
            } else if (e instanceof JobEvent.Completed) {
                terminal = e;
                state = JobState.COMPLETED;
            } else if (e instanceof JobEvent.Ended end) {
                terminal = e;
                state = end.state();
            }
            if (terminal != null) {
                ending = endListeners;
                endListeners = null;
            }
        }
        if (ending != null) {
            for (Runnable r : ending) {
                try {
                    r.run();
                } catch (RuntimeException ex) {
                    System.getLogger(Job.class.getName()).log(System.Logger.Level.WARNING,
                            "an end listener of job " + id + " failed", ex);
                }
            }
        }
        for (Mailbox m : watchers) {
            if (!m.offer(e)) {
                watchers.remove(m);
            }
        }
    }

    /**
     * A new watcher, primed with the latest state: the last Queued, Started, every step so far (the latest with its
     * previews, earlier ones without), the end. Close the mailbox to stop watching.
     */
    public Mailbox watch() {
        Mailbox m = new Mailbox();
        synchronized (this) {
            List<JobEvent> replay = new ArrayList<>();
            if (lastQueued != null) {
                replay.add(lastQueued);
            }
            if (started != null) {
                replay.add(started);
            }
            replay.addAll(earlierSteps);
            if (lastStep != null) {
                replay.add(lastStep);
            }
            if (terminal != null) {
                replay.add(terminal);
            }
            for (JobEvent e : replay) {
                m.offer(e);
            }
            if (terminal == null) {
                watchers.add(m);
            }
        }
        return m;
    }

    public int watcherCount() {
        return watchers.size();
    }

    /** Longest time, in nanoseconds, that any watcher has left an event untaken. */
    public long maxStalledNanos(long nowNanos) {
        long max = 0;
        for (Mailbox m : watchers) {
            max = Math.max(max, m.stalledNanos(nowNanos));
        }
        return max;
    }

    public static boolean isTerminal(JobEvent e) {
        return e instanceof JobEvent.Completed || e instanceof JobEvent.Ended;
    }
}
