/* bench/durable_floor_bench.py's C part (a shared library, loaded with ctypes):
 *
 * wait_woken(): the least a durable call can do to wait: it queues itself and sleeps on a condition
 *   variable until a completer thread (its stand-in for a disk that is done at once) wakes it.  ctypes
 *   calls it with the GIL released, as any wait for a device must be.
 * pingpong(): two threads handing a turn back and forth through a mutex and condition variables, either
 *   on two CPUs or both on one; wall and CPU seconds per round trip (two wake-ups).
 * nap(): nanosleep of 1 us, n times; wall and CPU seconds per call (what a timed wait costs here).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t woken = PTHREAD_COND_INITIALIZER, wanted = PTHREAD_COND_INITIALIZER;
static long want, done;
static int started;

static void *completer(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (done >= want)
            pthread_cond_wait(&wanted, &mu);
        done = want;
        pthread_cond_broadcast(&woken);
    }
    return 0;
}

int wait_woken(void) {
    pthread_mutex_lock(&mu);
    if (!started) {
        pthread_t t;
        if (pthread_create(&t, 0, completer, 0) != 0) {
            pthread_mutex_unlock(&mu);
            return -1;
        }
        pthread_detach(t);
        started = 1;
    }
    long mine = ++want;
    pthread_cond_signal(&wanted);
    while (done < mine)
        pthread_cond_wait(&woken, &mu);
    pthread_mutex_unlock(&mu);
    return 0;
}

static double secs(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static pthread_mutex_t pmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c_ping = PTHREAD_COND_INITIALIZER, c_pong = PTHREAD_COND_INITIALIZER;
static int turn, rounds;

static void pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *ponger(void *arg) {
    pin(*(int *)arg);
    for (int i = 0; i < rounds; i++) {
        pthread_mutex_lock(&pmu);
        while (turn != 1)
            pthread_cond_wait(&c_ping, &pmu);
        turn = 0;
        pthread_cond_signal(&c_pong);
        pthread_mutex_unlock(&pmu);
    }
    return 0;
}

/* out[0] = wall seconds, out[1] = CPU seconds (the process: both threads) per round trip */
int pingpong(int n, int same_cpu, double *out) {
    cpu_set_t old;
    pthread_getaffinity_np(pthread_self(), sizeof old, &old);
    int other = same_cpu ? 0 : 1;
    rounds = n;
    turn = 0;
    pin(0);
    pthread_t t;
    if (pthread_create(&t, 0, ponger, &other) != 0)
        return -1;
    double w0 = secs(CLOCK_MONOTONIC), c0 = secs(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&pmu);
        turn = 1;
        pthread_cond_signal(&c_ping);
        while (turn != 0)
            pthread_cond_wait(&c_pong, &pmu);
        pthread_mutex_unlock(&pmu);
    }
    out[0] = (secs(CLOCK_MONOTONIC) - w0) / n;
    out[1] = (secs(CLOCK_PROCESS_CPUTIME_ID) - c0) / n;
    pthread_join(t, 0);
    pthread_setaffinity_np(pthread_self(), sizeof old, &old);
    return 0;
}

int nap(int n, double *out) {
    struct timespec z = {0, 1000};
    double w0 = secs(CLOCK_MONOTONIC), c0 = secs(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < n; i++)
        nanosleep(&z, 0);
    out[0] = (secs(CLOCK_MONOTONIC) - w0) / n;
    out[1] = (secs(CLOCK_THREAD_CPUTIME_ID) - c0) / n;
    return 0;
}
