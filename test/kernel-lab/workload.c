/*
 * Kernel-lab workload: drives vfio-pci through the paths that take vdev->memory_lock for write and
 * prints one ledger line per operation so the host test can match episodes to what was done:
 *   OP <name> <begin_ns> <end_ns> <tid> <result>        (CLOCK_MONOTONIC, same clock as ts_ns)
 * usage: workload <iommu-group> <bdf> <op>...
 *   map      mmap BAR0 and read it (vfio_pci_mmap_*fault installs the PTEs)
 *   touch    read + write BAR0 (refault after a zap)
 *   cmd-off  clear PCI_COMMAND_MEMORY (vfio_basic_config_write -> zap under memory_lock)
 *   cmd-on   set PCI_COMMAND_MEMORY (memory_lock for write, no zap)
 *   reset    VFIO_DEVICE_RESET (vfio_pci_core_ioctl: zap + reset under memory_lock)
 *   d3 / d0  PMCSR power state write (vfio_pm_config_write -> vfio_pci_set_power_state)
 *   close    munmap + close the device fd (vfio_pci_core_close_device)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

static int device = -1;
static uint64_t config_offset;
static volatile uint32_t *bar0;
static size_t bar0_size;
static uint64_t bar0_offset;
static sigjmp_buf on_bus_error;

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

static void fail(const char *what)
{
	fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint32_t config_read(unsigned where, int size)
{
	uint32_t v = 0;
	if (pread(device, &v, size, config_offset + where) != size)
		fail("config read");
	return v;
}

static void config_write(unsigned where, int size, uint32_t v)
{
	if (pwrite(device, &v, size, config_offset + where) != size)
		fail("config write");
}

static void bus_error(int sig)
{
	(void)sig;
	siglongjmp(on_bus_error, 1);
}

/* 0: read/write ok, 1: SIGBUS (BAR not reachable), -1: not mapped */
static int touch_bar(void)
{
	if (!bar0)
		return -1;
	if (sigsetjmp(on_bus_error, 1))
		return 1;
	(void)bar0[0];
	bar0[1] = 0x5a5a5a5a;
	return 0;
}

static int power_cap(void)
{
	int pos, hops = 48;
	if (!(config_read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
		return 0;
	for (pos = config_read(PCI_CAPABILITY_LIST, 1) & ~3; pos && hops--; pos = config_read(pos + 1, 1) & ~3)
		if ((config_read(pos, 1) & 0xff) == PCI_CAP_ID_PM)
			return pos;
	return 0;
}

static void set_memory(int on)
{
	uint16_t cmd = config_read(PCI_COMMAND, 2);
	config_write(PCI_COMMAND, 2, on ? (cmd | PCI_COMMAND_MEMORY) : (cmd & ~PCI_COMMAND_MEMORY));
}

static long run_op(const char *op, struct vfio_device_info *info)
{
	if (!strcmp(op, "map")) {
		bar0 = mmap(NULL, bar0_size, PROT_READ | PROT_WRITE, MAP_SHARED, device, bar0_offset);
		if (bar0 == MAP_FAILED)
			fail("mmap BAR0");
		return touch_bar();
	}
	if (!strcmp(op, "touch"))
		return touch_bar();
	if (!strcmp(op, "cmd-off") || !strcmp(op, "cmd-on")) {
		set_memory(!strcmp(op, "cmd-on"));
		return config_read(PCI_COMMAND, 2);
	}
	if (!strcmp(op, "reset")) {
		if (!(info->flags & VFIO_DEVICE_FLAGS_RESET))
			return -ENOTSUP;
		return ioctl(device, VFIO_DEVICE_RESET) ? -errno : 0;
	}
	if (!strcmp(op, "d3") || !strcmp(op, "d0")) {
		int pm = power_cap();
		uint16_t csr;
		if (!pm)
			return -ENOTSUP;
		csr = config_read(pm + PCI_PM_CTRL, 2) & ~PCI_PM_CTRL_STATE_MASK;
		config_write(pm + PCI_PM_CTRL, 2, csr | (!strcmp(op, "d3") ? 3 : 0));
		return config_read(pm + PCI_PM_CTRL, 2) & PCI_PM_CTRL_STATE_MASK;
	}
	if (!strcmp(op, "close")) {
		if (bar0)
			munmap((void *)bar0, bar0_size);
		bar0 = NULL;
		close(device);
		device = -1;
		return 0;
	}
	fprintf(stderr, "workload: unknown op %s\n", op);
	exit(2);
}

int main(int argc, char **argv)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info region = { .argsz = sizeof(region) };
	char path[64];
	int container, group, i;

	if (argc < 4) {
		fprintf(stderr, "usage: %s <iommu-group> <bdf> <op>...\n", argv[0]);
		return 2;
	}
	signal(SIGBUS, bus_error);
	if ((container = open("/dev/vfio/vfio", O_RDWR)) < 0)
		fail("/dev/vfio/vfio");
	snprintf(path, sizeof(path), "/dev/vfio/%s", argv[1]);
	if ((group = open(path, O_RDWR)) < 0)
		fail(path);
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) || !(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		fail("group not viable");
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) || ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		fail("container");
	if ((device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[2])) < 0)
		fail("VFIO_GROUP_GET_DEVICE_FD");
	if (ioctl(device, VFIO_DEVICE_GET_INFO, &info))
		fail("VFIO_DEVICE_GET_INFO");
	region.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &region))
		fail("config region");
	config_offset = region.offset;
	memset(&region, 0, sizeof(region));
	region.argsz = sizeof(region);
	region.index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &region))
		fail("BAR0 region");
	bar0_offset = region.offset;
	bar0_size = region.size;
	printf("DEVICE %s flags=0x%x bar0_size=%zu pid=%d\n", argv[2], info.flags, bar0_size, getpid());
	for (i = 3; i < argc; i++) {
		uint64_t begin = mono_ns();
		long result = run_op(argv[i], &info);
		uint64_t end = mono_ns();
		printf("OP %s %llu %llu %ld %ld\n", argv[i], (unsigned long long)begin, (unsigned long long)end,
		       (long)syscall(SYS_gettid), result);
		fflush(stdout);
		usleep(2000); /* keep operations apart in time: episodes are matched to ledger windows */
	}
	return 0;
}
