/*
 * memtune: glibc malloc settings for a process that moves model chunks
 * (issue 14). By default glibc maps an allocation of 128 KiB or more on
 * its own (raising that bound as such blocks are freed) and gives the top
 * of the heap back to the kernel beyond twice that bound, so a process
 * that allocates, fills and frees a 1 MiB buffer per chunk (nanomsg's
 * receive buffer, protobuf-c's copy, a reply being packed) gets fresh
 * pages again and again, each faulted in and zeroed. In this project's
 * VM that was the largest cost of a download on the client (perf:
 * exc_page_fault and clear_page under memcpy; 190 against 570-840 MB/s
 * for 64 MiB, scripts/bench-results.md, Benchmarks). memtune_chunks keeps blocks
 * under MEMTUNE_MMAP_MAX in the heap and up to MEMTUNE_TRIM_MAX of freed
 * heap mapped, so those buffers are reused. Called once by a program's
 * main before it starts threads: bench_download. Not by cloudd nor
 * deviced, where it changed nothing measurable (cloudd's CPU per 64 MiB
 * download 0.039 against 0.038 s; deviced's chunk phase 0.85-1.2 s
 * either way, bound by its SQLite writes), and never by the device
 * library, whose host application owns malloc. With
 * DCCL_MALLOC_DEFAULT=1 in the environment it changes nothing (to
 * measure the difference). Other C libraries: no-op.
 */
#ifndef SHARED_MEMTUNE_H
#define SHARED_MEMTUNE_H

#define MEMTUNE_MMAP_MAX	(4 << 20)	/* limits.max-message default */
#define MEMTUNE_TRIM_MAX	(16 << 20)	/* freed heap kept mapped */

/* 1 if the settings were applied, 0 if not (opted out, not glibc). */
int	memtune_chunks(void);

#endif
