/*
 * The runnerkit Kubernetes placeholder: what a pod's step containers run
 * until their step starts (the engine then swaps the container's image).
 * Installed as /bin/sh in the FROM-scratch image runnerkit/kube-placeholder:1
 * (see build.sh), so any command a pod spec gives it ("/bin/sh -c ...") runs
 * this instead.
 *
 *   - ignores all its arguments and prints nothing;
 *   - sleeps forever (a pause() loop);
 *   - exits 0 at once on SIGTERM or SIGINT: the kubelet stops it with SIGTERM
 *     and it usually is the container's PID 1, for which the kernel drops
 *     signals that have no handler, so the handlers are what make it stop;
 *   - reaps children (as PID 1 it inherits orphans, e.g. from `kubectl exec`).
 *
 * Build: gcc -Os -static -o sh placeholder.c
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void reap(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static void on_child(int sig)
{
    int saved = errno;
    (void)sig;
    reap();
    errno = saved;
}

int main(int argc, char **argv)
{
    struct sigaction stop, child;
    sigset_t wanted;

    (void)argc;
    (void)argv;

    memset(&stop, 0, sizeof stop);
    stop.sa_handler = on_stop;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);

    memset(&child, 0, sizeof child);
    child.sa_handler = on_child;
    child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigemptyset(&child.sa_mask);
    sigaction(SIGCHLD, &child, NULL);

    /* A parent may have left these blocked; the mask survives exec. */
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGTERM);
    sigaddset(&wanted, SIGINT);
    sigaddset(&wanted, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &wanted, NULL);

    reap(); /* children that ended before the handler was in place */
    for (;;)
        pause();
}
