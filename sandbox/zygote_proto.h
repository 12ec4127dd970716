/* zygote_proto.h — the messages between a worker and its pyexec-zygote (see zygote.c). */
#ifndef PYEXEC_ZYGOTE_PROTO_H
#define PYEXEC_ZYGOTE_PROTO_H

#include <sys/types.h>

/* The zygote's end of the control socket. */
#define ZY_CONTROL_FD 3

struct zy_hello {
        int ok;
        char message[480]; /* why not, when !ok */
};

struct zy_reply {
        int err; /* 0, or the errno of the failed step */
        pid_t pid;
        char message[400];
};

#endif
