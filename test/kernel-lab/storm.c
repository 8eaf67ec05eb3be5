/*
 * Overhead storms: host work that runs through the functions our global probes sit on, none of it vfio's.
 *   truncate  each shrinking ftruncate of a tmpfs file calls unmap_mapping_range(mapping, holebegin, 0, 1)
 *             twice (shmem_setattr) and takes the inode's i_rwsem for write (down_write)
 *   mmap      mmap + touch + munmap of anonymous memory: the fault's anon_vma_prepare() and munmap's
 *             unlink_anon_vmas() take the anon_vma rwsem for write (down_write / up_write), munmap frees the
 *             VMA (remove_vma / vm_area_free)
 * usage: storm truncate <file-on-tmpfs> <iterations> | storm mmap <iterations>
 * prints: STORM <kind> <iterations> <ns_total> <ns_per_iteration>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
	const char *kind = argc > 1 ? argv[1] : "";
	long n, i;
	uint64_t t0;

	if (!strcmp(kind, "truncate") && argc > 3) {
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			perror("storm: open");
			return 1;
		}
		n = atol(argv[3]);
		t0 = mono_ns();
		for (i = 0; i < n; i++) {
			if (ftruncate(fd, 2 * 4096) || ftruncate(fd, 0)) {
				perror("storm: ftruncate");
				return 1;
			}
		}
	} else if (!strcmp(kind, "mmap") && argc > 2) {
		n = atol(argv[2]);
		t0 = mono_ns();
		for (i = 0; i < n; i++) {
			volatile char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED) {
				perror("storm: mmap");
				return 1;
			}
			p[0] = 1;
			if (munmap((void *)p, 4 * 4096)) {
				perror("storm: munmap");
				return 1;
			}
		}
	} else {
		fprintf(stderr, "usage: storm truncate <file> <iterations> | storm mmap <iterations>\n");
		return 2;
	}
	t0 = mono_ns() - t0;
	printf("STORM %s %ld %llu %.1f\n", kind, n, (unsigned long long)t0, (double)t0 / n);
	return 0;
}
