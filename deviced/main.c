/*
 * deviced's entry point. The daemon is deviced_main (deviced.c), in the
 * device library with everything else, so that the library's users
 * (dccl_device.h) and the daemon share one option table.
 */
#include "deviced/deviced.h"

int
main(int argc, char **argv)
{
	return deviced_main(argc, argv);
}
