/*
 * Overhead storm: unrelated unmap_mapping_range() calls. Each shrinking ftruncate of a tmpfs file
 * calls unmap_mapping_range(mapping, holebegin, 0, 1) twice (shmem_setattr); none is a vfio mapping.
 * usage: storm <file-on-tmpfs> <iterations>     prints: STORM <iterations> <ns_total> <ns_per_iteration>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 20000, i;
	int fd = argc > 1 ? open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600) : -1;
	uint64_t t0;

	if (fd < 0) {
		perror("storm: open");
		return 1;
	}
	t0 = mono_ns();
	for (i = 0; i < n; i++) {
		if (ftruncate(fd, 2 * 4096) || ftruncate(fd, 0)) {
			perror("storm: ftruncate");
			return 1;
		}
	}
	t0 = mono_ns() - t0;
	printf("STORM %ld %llu %.1f\n", n, (unsigned long long)t0, (double)t0 / n);
	return 0;
}
