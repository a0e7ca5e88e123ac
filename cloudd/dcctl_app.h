/*
 * dcctl_app: `dcctl device ...`, a client of a device's local app socket
 * (proto/app.proto): record an event, rank candidates, ask for status.
 * Lives beside dcctl.c and links into it through libcloudd.
 */
#ifndef CLOUDD_DCCTL_APP_H
#define CLOUDD_DCCTL_APP_H

/*
 * argv[0] is "device". Parses its own options and prints the reply.
 * Returns the exit status: 0, 1 (error reply or no reply), 2 (usage).
 */
int	dcctl_app_main(int argc, char **argv);

#endif
