/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * AF_PACKET capture with copy-mode (IPS/TAP), modelled on Suricata's
 * src/source-af-packet.c: one worker thread per (interface, thread index),
 * a turn-based start-up barrier (peers list) and per-thread peers through
 * which every received frame is forwarded to the copy-iface.
 *
 * The frames are read with recvfrom() instead of a TPACKET ring; the ring
 * setup cost is still paid in AFPSetupRing().
 */

#define SC_LOG_MODULE "af-packet"
#include "suricata-common.h"
#include "source-af-packet.h"
#include "tm-threads.h"
#include "util-device.h"
#include "util-misc.h"

#ifndef PACKET_FANOUT
#define PACKET_FANOUT 18
#endif
#ifndef PACKET_FANOUT_HASH
#define PACKET_FANOUT_HASH 0
#define PACKET_FANOUT_LB   1
#define PACKET_FANOUT_CPU  2
#endif
#ifndef PACKET_FANOUT_QM
#define PACKET_FANOUT_QM 5
#endif
#ifndef PACKET_FANOUT_FLAG_DEFRAG
#define PACKET_FANOUT_FLAG_DEFRAG 0x8000
#endif

#define unlikely(expr) __builtin_expect(!!(expr), 0)

#define AFP_STATE_DOWN 0
#define AFP_STATE_UP 1

#define AFP_RECONNECT_TIMEOUT 500000
#define AFP_DOWN_COUNTER_INTERVAL 40

#define POLL_TIMEOUT 100

#define AFP_FATAL_ERROR 1
#define AFP_RECOVERABLE_ERROR 2

/** frames in the ring when the config has no ring-size (8 MiB: the natural
 *  ring setup takes a few ms, the window of the bad order without a widener) */
#ifndef AFP_DEFAULT_RING_FRAMES
#define AFP_DEFAULT_RING_FRAMES 4096
#endif
/** a frame holds one 1514 byte packet plus its tpacket2_hdr */
#define AFP_FRAME_SIZE 2048
/** ring blocks are (page size << AFP_BLOCK_ORDER) bytes */
#define AFP_BLOCK_ORDER 3
/** do not let a config eat the machine */
#define AFP_RING_MAX_BYTES (256UL * 1024 * 1024)

#define AFP_PKT_BUF_SIZE 65536
#define AFP_READ_BATCH 64

/** \brief per-thread information needed to send on the thread's socket */
typedef struct AFPPeer_ {
    SC_ATOMIC_DECLARE(int, socket);
    SC_ATOMIC_DECLARE(int, if_idx);
    SC_ATOMIC_DECLARE(uint8_t, state);
    SC_ATOMIC_DECLARE(uint64_t, send_errors);
    int flags;
    int turn; /**< Start of socket creation order */
    char iface[AFP_IFACE_NAME_LENGTH];
    struct AFPPeer_ *peer; /**< the peer thread (copy-iface side) */
    struct AFPPeer_ *next;
} AFPPeer;

/** \brief the per-packet AF_PACKET data, as in Suricata's AFPPacketVars */
typedef struct AFPPacketVars_ {
    AFPPeer *peer;  /**< Sending peer, where the packet is forwarded to */
    AFPPeer *mpeer; /**< Peer of the receiving thread */
    uint8_t copy_mode;
} AFPPacketVars;

typedef struct Packet_ {
    uint8_t *pkt;
    uint32_t pktlen;
    AFPPacketVars afp_v;
} Packet;

#define GET_PKT_DATA(p) ((p)->pkt)
#define GET_PKT_LEN(p) ((p)->pktlen)

/** \brief Structure to hold thread specific variables. */
typedef struct AFPThreadVars_ {
    char iface[AFP_IFACE_NAME_LENGTH];
    char out_iface[AFP_IFACE_NAME_LENGTH];
    char name[32];
    int threads;
    int thread_idx;
    int cluster_id;
    int cluster_type;
    int copy_mode;
    int promisc;
    int ring_size;

    int socket;
    uint8_t afp_state;
    unsigned int down_count;

    AFPPeer *mpeer;
    LiveDevice *livedev;

    uint8_t *ring_buf;
    size_t ring_len;
    uint8_t *pkt_buf;

    uint64_t pkts;
    uint64_t discarded;

    pthread_t thread;
} AFPThreadVars;

/**
 * \defgroup afppeers AFP peers list
 *
 * AF_PACKET has an IPS mode where interfaces are peered: packets received
 * on one interface are sent on the other one. This list maintains the
 * peers; an element must not be destroyed while the engine runs as it is
 * used by other threads.
 *
 *  @{
 */

typedef struct AFPPeersList_ {
    AFPPeer *head;
    AFPPeer *tail;
    int cnt;
    int peered;
    SC_ATOMIC_DECLARE(int, turn); /**< Next value for initialisation order */
    SC_ATOMIC_DECLARE(int, reached); /**< Counter used to synchronize start */
} AFPPeersList;

static AFPPeersList peerslist;

static AFPThreadVars *afp_threads[AFP_MAX_IFACES * AFP_MAX_THREADS];
static unsigned int afp_nthreads = 0;
static unsigned int afp_nstarted = 0;

static int AFPGetIfnumByDev(int fd, const char *ifname, int verbose)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    SCStrlcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));

    if (ioctl(fd, SIOCGIFINDEX, (char *)&ifr) == -1) {
        if (verbose)
            SCLogError("%s: failed to find interface: %s", ifname, strerror(errno));
        return -1;
    }
    return ifr.ifr_ifindex;
}

static int AFPGetDevFlags(int fd, const char *ifname)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    SCStrlcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));

    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1) {
        SCLogError("%s: failed to get interface flags: %s", ifname, strerror(errno));
        return -1;
    }
    return ifr.ifr_flags;
}

/**
 * \brief Update the peer.
 *
 * Update the AFPPeer of a thread ie set new state, socket number
 * or iface index. The socket is written before the state, so a reader
 * seeing AFP_STATE_UP also sees the socket.
 */
static void AFPPeerUpdate(AFPThreadVars *ptv)
{
    if (ptv->mpeer == NULL) {
        return;
    }
    (void)SC_ATOMIC_SET(ptv->mpeer->if_idx, AFPGetIfnumByDev(ptv->socket, ptv->iface, 0));
    (void)SC_ATOMIC_SET(ptv->mpeer->socket, ptv->socket);
    (void)SC_ATOMIC_SET(ptv->mpeer->state, ptv->afp_state);
}

/**
 * \brief Init the global list of ::AFPPeer
 */
static void AFPPeersListInit(void)
{
    peerslist.head = peerslist.tail = NULL;
    peerslist.peered = 0;
    peerslist.cnt = 0;
    SC_ATOMIC_INIT(peerslist.turn);
    SC_ATOMIC_INIT(peerslist.reached);
}

/**
 * \brief Check that all ::AFPPeer got a peer
 *
 * \retval -1 if some threads are not peered, 0 else.
 */
static int AFPPeersListCheck(void)
{
    if (peerslist.cnt != peerslist.peered) {
        SCLogError("thread number not equal");
        return -1;
    }
    return 0;
}

/**
 * \brief Declare a new AFP thread to AFP peers list.
 */
static int AFPPeersListAdd(AFPThreadVars *ptv)
{
    AFPPeer *peer = calloc(1, sizeof(AFPPeer));
    AFPPeer *pitem;

    if (unlikely(peer == NULL)) {
        return -1;
    }
    SC_ATOMIC_INIT(peer->socket);
    SC_ATOMIC_INIT(peer->if_idx);
    SC_ATOMIC_INIT(peer->state);
    SC_ATOMIC_INIT(peer->send_errors);
    peer->turn = SC_ATOMIC_ADD(peerslist.turn, 1);

    (void)SC_ATOMIC_SET(peer->state, AFP_STATE_DOWN);
    snprintf(peer->iface, sizeof(peer->iface), "%s", ptv->iface);
    ptv->mpeer = peer;

    if (ptv->copy_mode != AFP_COPY_MODE_NONE) {
        peerslist.cnt++;

        /* Iter to find a peer */
        for (pitem = peerslist.head; pitem != NULL; pitem = pitem->next) {
            if (pitem->peer)
                continue;
            if (strcmp(pitem->iface, ptv->out_iface))
                continue;
            peer->peer = pitem;
            pitem->peer = peer;
            peerslist.peered += 2;
            break;
        }
    }

    /* add element to iface list */
    if (peerslist.tail == NULL) {
        peerslist.head = peer;
    } else {
        peerslist.tail->next = peer;
    }
    peerslist.tail = peer;

    AFPPeerUpdate(ptv);

    return 0;
}

static int AFPPeersListWaitTurn(AFPPeer *peer)
{
    /* If turn is zero, we already have started threads once */
    if (SC_ATOMIC_GET(peerslist.turn) == 0)
        return 0;

    if (peer->turn == SC_ATOMIC_GET(peerslist.reached))
        return 0;
    return 1;
}

static void AFPPeersListReachedInc(void)
{
    if (SC_ATOMIC_GET(peerslist.turn) == 0)
        return;

    if ((SC_ATOMIC_ADD(peerslist.reached, 1) + 1) == SC_ATOMIC_GET(peerslist.turn)) {
        (void)SC_ATOMIC_SET(peerslist.reached, 0);
        /* Set turn to 0 to skip synchronization when ReceiveAFPLoop is
         * restarted.
         */
        (void)SC_ATOMIC_SET(peerslist.turn, 0);
    }
}

static int AFPPeersListStarted(void)
{
    return !SC_ATOMIC_GET(peerslist.turn);
}

/**
 * \brief Clean the global peers list.
 */
static void AFPPeersListClean(void)
{
    AFPPeer *pitem = peerslist.head;
    while (pitem != NULL) {
        AFPPeer *next = pitem->next;
        free(pitem);
        pitem = next;
    }
    peerslist.head = peerslist.tail = NULL;
}

/**
 * @}
 */

static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose);

/**
 * \brief AF packet write function.
 *
 * Forwards a received frame on the socket of the peer thread, i.e. out of
 * the copy-iface.
 *
 * \param p the packet
 */
static void AFPWritePacket(Packet *p)
{
    struct sockaddr_ll socket_address;
    int socket;

    if (GET_PKT_LEN(p) < ETH_HLEN) {
        SCLogWarning("packet should have an ethernet header");
        return;
    }

    memset(&socket_address, 0, sizeof(socket_address));
    /* Index of the network device */
    socket_address.sll_ifindex = SC_ATOMIC_GET(p->afp_v.peer->if_idx);
    /* Address length*/
    socket_address.sll_halen = ETH_ALEN;
    /* Destination MAC */
    memcpy(socket_address.sll_addr, GET_PKT_DATA(p), 6);

    /* Send packet */
    socket = SC_ATOMIC_GET(p->afp_v.peer->socket);

    if (sendto(socket, GET_PKT_DATA(p), GET_PKT_LEN(p), 0, (struct sockaddr *)&socket_address,
                sizeof(struct sockaddr_ll)) < 0) {
        if (SC_ATOMIC_ADD(p->afp_v.peer->send_errors, 1) == 0) {
            SCLogWarning("%s: sending packet failed on socket %d: %s", p->afp_v.peer->iface, socket,
                    strerror(errno));
        }
    }
}

static void AFPReleaseDataFromRing(Packet *p)
{
    /* Need to be in copy mode */
    if (p->afp_v.copy_mode != AFP_COPY_MODE_NONE) {
        AFPWritePacket(p);
    }
}

static void AFPSwitchState(AFPThreadVars *ptv, uint8_t state)
{
    ptv->afp_state = state;
    ptv->down_count = 0;

    if (state == AFP_STATE_UP) {
        AFPPeerUpdate(ptv);
    }
}

/** \brief read the kernel counters (reading them resets them) */
static void AFPDumpCounters(AFPThreadVars *ptv)
{
    struct tpacket_stats kstats;
    socklen_t len = sizeof(struct tpacket_stats);

    if (ptv->socket < 0)
        return;
    if (getsockopt(ptv->socket, SOL_PACKET, PACKET_STATISTICS, &kstats, &len) > -1) {
        (void)SC_ATOMIC_ADD(ptv->livedev->drop, (uint64_t)kstats.tp_drops);
    }
}

/**
 * \brief Discard what is queued on the socket.
 *
 * \retval 1 when the start is complete, 0 to keep waiting, -1 on error
 */
static int AFPReadAndDiscard(AFPThreadVars *ptv, uint64_t *discarded_pkts)
{
    if (unlikely(suricata_ctl_flags != 0)) {
        return 1;
    }

    /* Once all threads are started, what was queued before is old: drop it
     * and let the capture loop take the frames that come next. */
    const int started = AFPPeersListStarted();
    for (int i = 0; i < 4096; i++) {
        ssize_t r = recv(ptv->socket, ptv->pkt_buf, AFP_PKT_BUF_SIZE, MSG_DONTWAIT | MSG_TRUNC);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            return -1;
        }
        (*discarded_pkts)++;
    }
    return started ? 1 : 0;
}

/**
 *  \brief Synchronize threads start
 *
 *  Discard packets before all threads are ready, as the cluster
 *  setup is not complete yet.
 *
 *  if AFPPeersListStarted() returns true init is complete
 *
 *  \retval r 1 = happy, otherwise unhappy
 */
static int AFPSynchronizeStart(AFPThreadVars *ptv, uint64_t *discarded_pkts)
{
    struct pollfd fds;

    fds.fd = ptv->socket;
    fds.events = POLLIN;

    while (1) {
        int r = poll(&fds, 1, POLL_TIMEOUT);
        if (suricata_ctl_flags != 0) {
            return 1;
        }
        if (r > 0 && (fds.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))) {
            SCLogWarning("%s: poll failed %02x", ptv->iface,
                    fds.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
            return 0;
        } else if (r > 0) {
            r = AFPReadAndDiscard(ptv, discarded_pkts);
            switch (r) {
                case 1:
                    SCLogDebug("Starting to read on %s", ptv->name);
                    return 1;
                case -1:
                    return r;
            }
            /* no packets */
        } else if (r == 0 && AFPPeersListStarted()) {
            SCLogDebug("Starting to read on %s", ptv->name);
            return 1;
        } else if (r < 0 && errno != EINTR) { /* only exit on error */
            SCLogWarning("poll failed with retval %d", r);
            return 0;
        }
    }
    return 1;
}

static void AFPCloseSocket(AFPThreadVars *ptv)
{
    if (ptv->socket >= 0) {
        close(ptv->socket);
        ptv->socket = -1;
    }
    if (ptv->ring_buf != NULL) {
        munmap(ptv->ring_buf, ptv->ring_len);
        ptv->ring_buf = NULL;
        ptv->ring_len = 0;
    }
}

/**
 * \brief Try to reopen socket
 *
 * \retval 0 in case of success, negative if error occurs or a condition
 * is not met.
 */
static int AFPTryReopen(AFPThreadVars *ptv)
{
    ptv->down_count++;

    AFPCloseSocket(ptv);

    int afp_activate_r = AFPCreateSocket(ptv, ptv->iface, 0);
    if (afp_activate_r != 0) {
        if (ptv->down_count % AFP_DOWN_COUNTER_INTERVAL == 0) {
            SCLogWarning("%s: can't reopen interface", ptv->iface);
        }
        return afp_activate_r;
    }

    SCLogInfo("%s: interface is back up", ptv->iface);
    return 0;
}

/**
 * \brief Read the frames queued on the socket and forward them.
 *
 * \retval 0 ok, -1 on socket error
 */
static int AFPReadFromSocket(AFPThreadVars *ptv)
{
    for (int i = 0; i < AFP_READ_BATCH; i++) {
        struct sockaddr_ll from;
        socklen_t fromlen = sizeof(from);
        ssize_t len = recvfrom(ptv->socket, ptv->pkt_buf, AFP_PKT_BUF_SIZE,
                MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
        if (len < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            SCLogWarning("%s: failed to read from socket: %s", ptv->iface, strerror(errno));
            return -1;
        }
        /* never forward our own transmissions back */
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue;
        if (len > AFP_PKT_BUF_SIZE)
            continue;

        ptv->pkts++;
        (void)SC_ATOMIC_ADD(ptv->livedev->pkts, 1);

        Packet p;
        p.pkt = ptv->pkt_buf;
        p.pktlen = (uint32_t)len;
        p.afp_v.copy_mode = (uint8_t)ptv->copy_mode;
        p.afp_v.mpeer = ptv->mpeer;
        p.afp_v.peer = (ptv->copy_mode != AFP_COPY_MODE_NONE) ? ptv->mpeer->peer : NULL;
        AFPReleaseDataFromRing(&p);
    }
    return 0;
}

/**
 *  \brief Main AF_PACKET reading Loop function
 */
static int ReceiveAFPLoop(AFPThreadVars *ptv)
{
    struct pollfd fds;
    int r;
    uint64_t discarded_pkts = 0;

    if (ptv->afp_state == AFP_STATE_DOWN) {
        /* Wait for our turn, threads before us must have opened the socket */
        while (AFPPeersListWaitTurn(ptv->mpeer)) {
            usleep(1000);
            if (suricata_ctl_flags != 0) {
                break;
            }
        }
        r = AFPCreateSocket(ptv, ptv->iface, 1);
        if (r < 0) {
            switch (-r) {
                case AFP_FATAL_ERROR:
                    SCLogError("%s: failed to init socket for interface", ptv->iface);
                    return -1;
                case AFP_RECOVERABLE_ERROR:
                    SCLogWarning(
                            "%s: failed to init socket for interface, retrying soon", ptv->iface);
            }
        }
        AFPPeersListReachedInc();
    }
    if (ptv->afp_state == AFP_STATE_UP) {
        SCLogDebug("Thread %s using socket %d", ptv->name, ptv->socket);
        AFPSynchronizeStart(ptv, &discarded_pkts);
        ptv->discarded = discarded_pkts;
        /* reset the kernel counters: the capture starts now */
        struct tpacket_stats kstats;
        socklen_t len = sizeof(kstats);
        (void)getsockopt(ptv->socket, SOL_PACKET, PACKET_STATISTICS, &kstats, &len);
    }

    fds.fd = ptv->socket;
    fds.events = POLLIN;

    /* Indicate that the thread is actually running its application level
     * code (i.e., it can poll packets) */
    TmThreadsSetRunning();

    while (1) {
        /* Start by checking the state of our interface */
        if (unlikely(ptv->afp_state == AFP_STATE_DOWN)) {
            int dbreak = 0;

            do {
                for (int i = 0; i < AFP_RECONNECT_TIMEOUT / 100000; i++) {
                    usleep(100000);
                    if (suricata_ctl_flags != 0)
                        break;
                }
                if (suricata_ctl_flags != 0) {
                    dbreak = 1;
                    break;
                }
                r = AFPTryReopen(ptv);
                fds.fd = ptv->socket;
            } while (r < 0);
            if (dbreak == 1)
                break;
        }

        r = poll(&fds, 1, POLL_TIMEOUT);

        if (suricata_ctl_flags != 0) {
            break;
        }

        if (r > 0 && (fds.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))) {
            if (fds.revents & (POLLHUP | POLLRDHUP)) {
                AFPSwitchState(ptv, AFP_STATE_DOWN);
                continue;
            } else if (fds.revents & POLLERR) {
                char c;
                /* Do a recv to get errno */
                if (recv(ptv->socket, &c, sizeof c, MSG_PEEK) != -1)
                    continue; /* what, no error? */
                SCLogWarning("%s: failed to poll interface: %s", ptv->iface, strerror(errno));
                AFPSwitchState(ptv, AFP_STATE_DOWN);
                continue;
            } else if (fds.revents & POLLNVAL) {
                SCLogWarning("%s: invalid poll request: %s", ptv->iface, strerror(errno));
                AFPSwitchState(ptv, AFP_STATE_DOWN);
                continue;
            }
        } else if (r > 0) {
            if (AFPReadFromSocket(ptv) < 0) {
                AFPSwitchState(ptv, AFP_STATE_DOWN);
                continue;
            }
        } else if (r < 0 && errno != EINTR) {
            SCLogWarning("%s: poll failure: %s", ptv->iface, strerror(errno));
            AFPSwitchState(ptv, AFP_STATE_DOWN);
            continue;
        }
    }

    AFPDumpCounters(ptv);
    return 0;
}

static void *AFPWorkerThread(void *arg)
{
    AFPThreadVars *ptv = (AFPThreadVars *)arg;
    if (ReceiveAFPLoop(ptv) != 0) {
        TmThreadsSetFailed();
    }
    return NULL;
}

static int AFPSetupRing(AFPThreadVars *ptv, char *devname)
{
    int val;
    unsigned int len = sizeof(val), i;
    int order;

    val = TPACKET_V2;
    if (getsockopt(ptv->socket, SOL_PACKET, PACKET_HDRLEN, &val, &len) < 0) {
        if (errno == ENOPROTOOPT) {
            SCLogError("%s: kernel too old (need 2.6.27+)", devname);
        } else {
            SCLogError("%s: failed to retrieve packet header len", devname);
        }
        return AFP_FATAL_ERROR;
    }

    /* Like AFPComputeRingParams(): frames packed in blocks of
     * (page size << order) bytes, then the whole ring is mapped and touched.
     * The kernel does this work in setsockopt(PACKET_RX_RING) and mmap();
     * here it is done in user space, which costs about the same. */
    order = AFP_BLOCK_ORDER;
    size_t block_size = (size_t)getpagesize() << order;
    size_t frames = ptv->ring_size > 0 ? (size_t)ptv->ring_size : AFP_DEFAULT_RING_FRAMES;
    size_t frames_per_block = block_size / AFP_FRAME_SIZE;
    size_t block_nr = (frames + frames_per_block - 1) / frames_per_block;
    if (block_nr * block_size > AFP_RING_MAX_BYTES)
        block_nr = AFP_RING_MAX_BYTES / block_size;

    ptv->ring_len = block_nr * block_size;
    ptv->ring_buf = mmap(NULL, ptv->ring_len, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ptv->ring_buf == MAP_FAILED) {
        SCLogError("%s: failed to mmap: %s", devname, strerror(errno));
        ptv->ring_buf = NULL;
        ptv->ring_len = 0;
        return AFP_FATAL_ERROR;
    }
    for (i = 0; i < block_nr; i++) {
        memset(ptv->ring_buf + (size_t)i * block_size, 0, block_size);
    }
    SCLogDebug("%s: ring of %zu blocks of %zu bytes (hdrlen %d)", devname, block_nr, block_size,
            val);
    return 0;
}

static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose)
{
    int r;
    int ret = AFP_FATAL_ERROR;
    struct packet_mreq sock_params;
    struct sockaddr_ll bind_address;
    int if_idx;

    /* open socket */
    ptv->socket = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (ptv->socket == -1) {
        SCLogError("%s: failed to create socket: %s", devname, strerror(errno));
        goto error;
    }

    if_idx = AFPGetIfnumByDev(ptv->socket, devname, verbose);
    if (if_idx == -1) {
        goto socket_err;
    }

    /* bind socket */
    memset(&bind_address, 0, sizeof(bind_address));
    bind_address.sll_family = AF_PACKET;
    bind_address.sll_protocol = htons(ETH_P_ALL);
    bind_address.sll_ifindex = if_idx;

    int if_flags = AFPGetDevFlags(ptv->socket, ptv->iface);
    if (if_flags == -1) {
        if (verbose) {
            SCLogWarning("%s: failed to get interface flags", ptv->iface);
        }
        ret = AFP_RECOVERABLE_ERROR;
        goto socket_err;
    } else if ((if_flags & (IFF_UP | IFF_RUNNING)) == 0) {
        if (verbose) {
            SCLogWarning("%s: interface is down", ptv->iface);
        }
        ret = AFP_RECOVERABLE_ERROR;
        goto socket_err;
    }

    if (ptv->promisc != 0) {
        /* Force promiscuous mode */
        memset(&sock_params, 0, sizeof(sock_params));
        sock_params.mr_type = PACKET_MR_PROMISC;
        sock_params.mr_ifindex = bind_address.sll_ifindex;
        r = setsockopt(ptv->socket, SOL_PACKET, PACKET_ADD_MEMBERSHIP, (void *)&sock_params,
                sizeof(sock_params));
        if (r < 0) {
            SCLogError("%s: failed to set promisc mode: %s", devname, strerror(errno));
            goto socket_err;
        }
    }

    r = bind(ptv->socket, (struct sockaddr *)&bind_address, sizeof(bind_address));
    if (r < 0) {
        if (verbose) {
            if (errno == ENETDOWN) {
                SCLogWarning("%s: failed to bind socket, iface is down", devname);
            } else {
                SCLogWarning("%s: failed to bind socket: %s", devname, strerror(errno));
            }
        }
        ret = AFP_RECOVERABLE_ERROR;
        goto socket_err;
    }

    /* add bound socket to fanout group */
    if (ptv->threads > 1) {
        uint32_t mode = ptv->cluster_type;
        uint16_t id = ptv->cluster_id;
        uint32_t option = (mode << 16) | (id & 0xffff);
        r = setsockopt(ptv->socket, SOL_PACKET, PACKET_FANOUT, (void *)&option, sizeof(option));
        if (r < 0) {
            SCLogError("%s: failed to set fanout mode: %s", devname, strerror(errno));
            goto socket_err;
        }
    }

    ret = AFPSetupRing(ptv, devname);
    if (ret != 0)
        goto socket_err;

    SCLogDebug("Using interface '%s' via socket %d", (char *)devname, ptv->socket);

    /* Init is ok */
    AFPSwitchState(ptv, AFP_STATE_UP);
    return 0;

socket_err:
    close(ptv->socket);
    ptv->socket = -1;
error:
    return -ret;
}

int AFPParseClusterType(const char *s)
{
    if (strcmp(s, "cluster_round_robin") == 0)
        return PACKET_FANOUT_LB;
    if (strcmp(s, "cluster_cpu") == 0)
        return PACKET_FANOUT_CPU;
    if (strcmp(s, "cluster_qm") == 0)
        return PACKET_FANOUT_QM;
    /* cluster_flow and everything else */
    return PACKET_FANOUT_HASH;
}

/**
 * \brief Create the worker threads: one per (interface, thread index), in
 *        configuration order, which is also the start-up turn order.
 */
int AFPRunModeStart(AFPIfaceConfig *confs, int n)
{
    AFPPeersListInit();

    for (int i = 0; i < n; i++) {
        if (LiveRegisterDevice(confs[i].iface) == NULL)
            return -1;
    }

    for (int i = 0; i < n; i++) {
        AFPIfaceConfig *c = &confs[i];
        if (c->copy_mode != AFP_COPY_MODE_NONE) {
            if (LiveGetDevice(c->out_iface) == NULL) {
                SCLogError("AF_PACKET device %s not found. Aborting..", c->out_iface);
                return -1;
            }
            SCLogInfo("%s: AF_PACKET %s mode activated %s->%s", c->iface,
                    c->copy_mode == AFP_COPY_MODE_IPS ? "IPS" : "TAP", c->iface, c->out_iface);
        }
        for (int t = 0; t < c->threads; t++) {
            AFPThreadVars *ptv = calloc(1, sizeof(AFPThreadVars));
            if (ptv == NULL)
                return -1;
            snprintf(ptv->iface, sizeof(ptv->iface), "%s", c->iface);
            snprintf(ptv->out_iface, sizeof(ptv->out_iface), "%s", c->out_iface);
            snprintf(ptv->name, sizeof(ptv->name), "W#%02d-%s", t + 1, c->iface);
            ptv->threads = c->threads;
            ptv->thread_idx = t;
            ptv->cluster_id = c->cluster_id;
            ptv->cluster_type = c->cluster_type | (c->defrag ? PACKET_FANOUT_FLAG_DEFRAG : 0);
            ptv->copy_mode = c->copy_mode;
            ptv->promisc = c->promisc;
            ptv->ring_size = c->ring_size;
            ptv->livedev = LiveGetDevice(c->iface);
            ptv->pkt_buf = malloc(AFP_PKT_BUF_SIZE);
            if (ptv->pkt_buf == NULL) {
                free(ptv);
                return -1;
            }
            afp_threads[afp_nthreads++] = ptv;
            if (AFPPeersListAdd(ptv) != 0)
                return -1;
        }
    }

    if (AFPPeersListCheck() != 0)
        return -1;

    for (unsigned int i = 0; i < afp_nthreads; i++) {
        AFPThreadVars *ptv = afp_threads[i];
        int r = pthread_create(&ptv->thread, NULL, AFPWorkerThread, ptv);
        if (r != 0) {
            SCLogError("%s: failed to create thread: %s", ptv->name, strerror(r));
            return -1;
        }
        afp_nstarted++;
        char tname[16];
        SCStrlcpy(tname, ptv->name, sizeof(tname));
        (void)pthread_setname_np(ptv->thread, tname);
    }
    return 0;
}

unsigned int AFPRunModeWorkers(void)
{
    return afp_nthreads;
}

/** \brief join all workers, then close the sockets (no sends after close) */
void AFPRunModeStop(void)
{
    for (unsigned int i = 0; i < afp_nstarted; i++) {
        pthread_join(afp_threads[i]->thread, NULL);
    }
    for (unsigned int i = 0; i < afp_nthreads; i++) {
        AFPThreadVars *ptv = afp_threads[i];
        AFPCloseSocket(ptv);
        free(ptv->pkt_buf);
        free(ptv);
        afp_threads[i] = NULL;
    }
    afp_nthreads = 0;
    afp_nstarted = 0;
    AFPPeersListClean();
}
