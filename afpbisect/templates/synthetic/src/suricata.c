/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Entry point. Understands the command line Suricata is started with in
 * AF_PACKET IPS mode:
 *
 *   suricata -c suricata.yaml --af-packet -l LOGDIR -k none -S /dev/null
 *
 * Options it does not need are accepted and ignored.
 */

#define SC_LOG_MODULE "suricata"
#include "suricata-common.h"
#include "version.h"
#include "conf-yaml.h"
#include "source-af-packet.h"
#include "tm-threads.h"
#include "util-device.h"

static volatile sig_atomic_t sigterm_count = 0;

static void SignalHandlerSigterm(int sig)
{
    (void)sig;
    sigterm_count = 1;
}

static void SetupSignals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SignalHandlerSigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    signal(SIGPIPE, SIG_IGN);
}

static void Usage(const char *progname)
{
    printf("USAGE: %s [OPTIONS]\n\n", progname);
    printf("\t-c <path>                            : path to configuration file\n");
    printf("\t-l <dir>                             : default log directory\n");
    printf("\t-v                                   : be more verbose (use multiple times)\n");
    printf("\t--af-packet[=<dev>]                  : run in af-packet mode\n");
    printf("\t-V, --build-info                     : display version and exit\n");
}

/** options that take a separate value, which must be skipped */
static int OptionTakesValue(const char *opt)
{
    static const char *const with_value[] = { "-c", "-l", "-k", "-S", "-s", "-r", "-i", "-q",
        "-d", "-D", "-F", "-u", "-U", "-g", "--pidfile", "--runmode", "--set", "--user",
        "--group", "--include", "--strict-rule-keywords", NULL };
    for (int i = 0; with_value[i] != NULL; i++) {
        if (strcmp(opt, with_value[i]) == 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf_filename = NULL;
    const char *log_dir = NULL;
    int verbose = 0;

    SCLogInitConsole();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-V") == 0 || strcmp(a, "--build-info") == 0 ||
                strcmp(a, "--version") == 0) {
            printf("This is %s version %s\n", PROG_NAME, PROG_VER);
            return EXIT_SUCCESS;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            Usage(argv[0]);
            return EXIT_SUCCESS;
        } else if (a[0] == '-' && a[1] == 'v' && strspn(a + 1, "v") == strlen(a + 1)) {
            verbose += (int)strlen(a + 1);
        } else if (OptionTakesValue(a)) {
            if (i + 1 >= argc) {
                SCLogError("option %s requires an argument", a);
                return EXIT_FAILURE;
            }
            if (strcmp(a, "-c") == 0)
                conf_filename = argv[i + 1];
            else if (strcmp(a, "-l") == 0)
                log_dir = argv[i + 1];
            i++;
        }
        /* --af-packet[=dev] and everything else: accepted, nothing to do */
    }
    SCLogSetVerbosity(SC_LOG_NOTICE + verbose);

    if (conf_filename == NULL) {
        SCLogError("no configuration file given, use -c <path>");
        return EXIT_FAILURE;
    }
    if (log_dir != NULL) {
        struct stat st;
        if (stat(log_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            SCLogError("The logging directory \"%s\" supplied at the command-line (-l %s) "
                       "doesn't exist. Shutting down the engine.",
                    log_dir, log_dir);
            return EXIT_FAILURE;
        }
    }

    static AFPIfaceConfig confs[AFP_MAX_IFACES];
    int n = ConfYamlLoadAFPacket(conf_filename, confs, AFP_MAX_IFACES);
    if (n < 0)
        return EXIT_FAILURE;
    if (n == 0) {
        SCLogError("af-packet: no interface in the af-packet section of %s", conf_filename);
        return EXIT_FAILURE;
    }

    SCLogNotice("This is %s version %s RELEASE running in %s mode", PROG_NAME, PROG_VER, "SYSTEM");

    SetupSignals();

    /* workers inherit a mask that blocks the termination signals, so only
     * the main thread handles them */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    int r = AFPRunModeStart(confs, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    int failed = (r != 0);
    unsigned int workers = AFPRunModeWorkers();
    int started = 0;

    while (!failed && sigterm_count == 0) {
        if (TmThreadsFailed()) {
            failed = 1;
            break;
        }
        if (!started && TmThreadsGetRunning() >= workers) {
            TmThreadsAnnounceStarted(workers);
            started = 1;
        }
        usleep(started ? 10000 : 1000);
    }

    if (sigterm_count != 0) {
        SCLogNotice("Signal Received.  Stopping engine.");
    } else if (failed) {
        SCLogError("Engine initialization failed, aborting...");
    }

    TmThreadsSetCtlFlags(SURICATA_STOP);
    AFPRunModeStop();
    LiveDeviceListClean();

    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
