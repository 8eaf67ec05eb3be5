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
 *   dmabuf   export BAR0 as a DMABUF (VFIO_DEVICE_FEATURE_DMA_BUF, 6.19+): result = the fd or -errno
 *   dmabuf-mmap  mmap the DMABUF and touch it (the DMABUF has no .mmap before the DMABUF-mmap series: -EINVAL)
 *   import[:US]  attach the lab importer (test/kernel-lab/importer, /dev/rs_importer) to the DMABUF with an
 *            invalidate_mappings callback that sleeps US microseconds: result = attachments or -errno
 *   notified ask the importer how many invalidations it has seen so far
 *   dmabuf-close  close our DMABUF fd (an importer keeps the DMABUF alive until it detaches)
 *   unmap    munmap BAR0 (the device stays open)
 *   flr      PCIe DevCtl "Initiate FLR" config write (vfio_exp_config_write -> pci_try_reset_function)
 *   hot-reset  VFIO_DEVICE_PCI_HOT_RESET with this device's group (every device of the bus is reset)
 *   hot-reset-bad  VFIO_DEVICE_PCI_HOT_RESET with no group fd: fails before any lock (-EINVAL)
 *   no-reset-method / default-reset-method  write "" / "default" to the device's sysfs reset_method: with
 *            no method VFIO_DEVICE_RESET still takes memory_lock and revokes, then fails (-ENOTTY)
 *   lp-entry / lp-exit  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY / _EXIT (runtime PM)
 *   sleep:MS pause (lets a collector start in the middle of the sequence)
 *   wait:FILE  block until FILE exists (the guest creates it once the collector is attached; at most 20 min)
 *   loop-reset:FILE  resets back to back until FILE exists (a collector started meanwhile finds a window open);
 *            result = -(failed resets)
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

#ifndef VFIO_DEVICE_FEATURE_DMA_BUF
#define VFIO_DEVICE_FEATURE_DMA_BUF 11
struct vfio_region_dma_range {
	__u64 offset;
	__u64 length;
};
struct vfio_device_feature_dma_buf {
	__u32 region_index;
	__u32 open_flags;
	__u32 flags;
	__u32 nr_ranges;
	struct vfio_region_dma_range dma_ranges[];
};
#endif
#ifndef VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY 3
#define VFIO_DEVICE_FEATURE_LOW_POWER_EXIT 5
#endif
/* test/kernel-lab/importer/rs_importer.c */
struct rs_attach_req {
	__s32 fd;
	__u32 delay_us;
};
#define RS_IMPORTER_ATTACH _IOW('R', 1, struct rs_attach_req)
#define RS_IMPORTER_NOTIFIED _IOR('R', 2, __u64)

static int device = -1, group = -1, dmabuf = -1, importer = -1;
static const char *bdf;
static volatile uint32_t *dmabuf_map;
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

static int pcie_cap(void)
{
	int pos, hops = 48;
	if (!(config_read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
		return 0;
	for (pos = config_read(PCI_CAPABILITY_LIST, 1) & ~3; pos && hops--; pos = config_read(pos + 1, 1) & ~3)
		if ((config_read(pos, 1) & 0xff) == PCI_CAP_ID_EXP)
			return pos;
	return 0;
}

static long feature(uint32_t flags, void *data, size_t size)
{
	char buf[sizeof(struct vfio_device_feature) + 256];
	struct vfio_device_feature *f = (void *)buf;
	long ret;

	memset(buf, 0, sizeof(buf));
	f->argsz = sizeof(*f) + size;
	f->flags = flags;
	if (size)
		memcpy(f->data, data, size);
	ret = ioctl(device, VFIO_DEVICE_FEATURE, f);
	return ret < 0 ? -errno : ret;
}

static long hot_reset(int with_group)
{
	char buf[sizeof(struct vfio_pci_hot_reset) + sizeof(__s32)];
	struct vfio_pci_hot_reset *r = (void *)buf;

	memset(buf, 0, sizeof(buf));
	r->argsz = sizeof(buf);
	r->count = with_group ? 1 : 0;
	r->group_fds[0] = group;
	return ioctl(device, VFIO_DEVICE_PCI_HOT_RESET, r) ? -errno : 0;
}

static long sysfs_write(const char *attr, const char *value)
{
	char path[128];
	int fd;
	long ret = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	if ((fd = open(path, O_WRONLY)) < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static long touch_dmabuf(void)
{
	if (!dmabuf_map)
		return -1;
	if (sigsetjmp(on_bus_error, 1))
		return 1;
	(void)dmabuf_map[0];
	return 0;
}

static long run_op(const char *op, struct vfio_device_info *info)
{
	if (!strcmp(op, "dmabuf")) {
		struct {
			struct vfio_device_feature_dma_buf get;
			struct vfio_region_dma_range range;
		} req = { .get = { .region_index = VFIO_PCI_BAR0_REGION_INDEX, .open_flags = O_RDWR | O_CLOEXEC, .nr_ranges = 1 },
			  .range = { .offset = 0, .length = bar0_size } };
		long fd = feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF, &req, sizeof(req));
		if (fd >= 0)
			dmabuf = fd;
		return fd;
	}
	if (!strcmp(op, "dmabuf-mmap")) {
		void *p;
		if (dmabuf < 0)
			return -EBADF;
		p = mmap(NULL, bar0_size, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
		if (p == MAP_FAILED)
			return -errno;
		dmabuf_map = p;
		return touch_dmabuf();
	}
	if (!strcmp(op, "dmabuf-touch"))
		return touch_dmabuf();
	if (!strcmp(op, "import") || !strncmp(op, "import:", 7)) {
		struct rs_attach_req req = { .fd = dmabuf, .delay_us = op[6] == ':' ? (unsigned)atol(op + 7) : 0 };
		if (dmabuf < 0)
			return -EBADF;
		if (importer < 0 && (importer = open("/dev/rs_importer", O_RDWR)) < 0)
			return -errno;
		long n = ioctl(importer, RS_IMPORTER_ATTACH, &req);
		return n < 0 ? -errno : n;
	}
	if (!strcmp(op, "notified")) {
		__u64 n = 0;
		if (importer < 0)
			return -EBADF;
		return ioctl(importer, RS_IMPORTER_NOTIFIED, &n) ? -errno : (long)n;
	}
	if (!strcmp(op, "dmabuf-close")) {
		if (dmabuf_map)
			munmap((void *)dmabuf_map, bar0_size);
		dmabuf_map = NULL;
		if (dmabuf >= 0)
			close(dmabuf);
		dmabuf = -1;
		return 0;
	}
	if (!strcmp(op, "unmap")) {
		if (!bar0)
			return -EBADF;
		munmap((void *)bar0, bar0_size);
		bar0 = NULL;
		return 0;
	}
	if (!strcmp(op, "flr")) {
		int exp = pcie_cap();
		if (!exp || !(config_read(exp + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_FLR))
			return -ENOTSUP;
		config_write(exp + PCI_EXP_DEVCTL, 2, config_read(exp + PCI_EXP_DEVCTL, 2) | PCI_EXP_DEVCTL_BCR_FLR);
		return 0;
	}
	if (!strcmp(op, "hot-reset"))
		return hot_reset(1);
	if (!strcmp(op, "hot-reset-bad"))
		return hot_reset(0);
	if (!strcmp(op, "no-reset-method"))
		return sysfs_write("reset_method", "\n");
	if (!strcmp(op, "default-reset-method"))
		return sysfs_write("reset_method", "default");
	if (!strcmp(op, "lp-entry"))
		return feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, NULL, 0);
	if (!strcmp(op, "lp-exit"))
		return feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, NULL, 0);
	if (!strncmp(op, "sleep:", 6)) {
		usleep(atol(op + 6) * 1000);
		return 0;
	}
	if (!strncmp(op, "wait:", 5)) {
		int i;
		for (i = 0; i < 60000 && access(op + 5, F_OK); i++)
			usleep(20000);
		return access(op + 5, F_OK) ? -ETIMEDOUT : 0;
	}
	if (!strncmp(op, "loop-reset:", 11)) {
		long i, fails = 0;
		for (i = 0; i < 100000 && access(op + 11, F_OK); i++)
			fails += ioctl(device, VFIO_DEVICE_RESET) != 0;
		return -fails;
	}
	if (!strncmp(op, "revoke-storm:", 13)) {
		/* the collector's cost per revoke (kernel-overhead bench): PCI_COMMAND memory off and on, n times; each off
		 * is a write section with a zap, each on one without */
		long i, n = atol(op + 13);
		uint64_t t0 = mono_ns();
		for (i = 0; i < n; i++) {
			set_memory(0);
			set_memory(1);
		}
		t0 = mono_ns() - t0;
		printf("STORM revoke %ld %llu %.1f\n", n, (unsigned long long)t0, n ? (double)t0 / n : 0.0);
		return 0;
	}
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
	if (!strcmp(op, "importer-close")) {
		if (importer >= 0)
			close(importer);
		importer = -1;
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
	int container, i;

	if (argc < 4) {
		fprintf(stderr, "usage: %s <iommu-group> <bdf> <op>...\n", argv[0]);
		return 2;
	}
	signal(SIGBUS, bus_error);
	bdf = argv[2];
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
