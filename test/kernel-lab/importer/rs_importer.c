// SPDX-License-Identifier: GPL-2.0
/*
 * rs_importer: a dynamic DMABUF importer for the revokescope kernel lab. It stands in for an RDMA NIC or a GPU
 * that imports a vfio-pci BAR DMABUF (VFIO_DEVICE_FEATURE_DMA_BUF): it attaches with dma_buf_dynamic_attach()
 * and an invalidate_mappings callback (peer2peer, so vfio_pci_dma_buf_attach() accepts it, and revocable, so
 * dma_buf_attach_revocable() is true). vfio_pci_dma_buf_move() calls the callback through
 * dma_buf_invalidate_mappings() under the DMABUF's reservation lock while vdev->memory_lock is held for write:
 * a slow importer stretches the revoke. It never maps the attachment (its device is not a PCI peer).
 *
 *   /dev/rs_importer  ioctl RS_IMPORTER_ATTACH {fd, delay_us}: attach to the DMABUF behind fd; each
 *                     invalidation then sleeps delay_us. ioctl RS_IMPORTER_NOTIFIED: invalidations so far.
 *                     Closing the file detaches everything it attached.
 */
#include <linux/delay.h>
#include <linux/dma-buf.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

struct rs_attach_req {
	__s32 fd;
	__u32 delay_us;
};
#define RS_IMPORTER_ATTACH _IOW('R', 1, struct rs_attach_req)
#define RS_IMPORTER_NOTIFIED _IOR('R', 2, __u64)
#define RS_MAX_ATTACH 16

struct rs_import {
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	u32 delay_us;
};

struct rs_file {
	struct mutex lock;
	int count;
	struct rs_import imports[RS_MAX_ATTACH];
};

static atomic64_t rs_notified = ATOMIC64_INIT(0);
static struct miscdevice rs_misc;

/* Called by dma_buf_invalidate_mappings() with the DMABUF's dma_resv held: the importer must stop using
 * its mapping before returning (a real one would quiesce its DMA here). */
static void rs_invalidate_mappings(struct dma_buf_attachment *attach)
{
	struct rs_import *imp = attach->importer_priv;

	atomic64_inc(&rs_notified);
	if (imp->delay_us)
		fsleep(imp->delay_us);
}

static const struct dma_buf_attach_ops rs_importer_ops = {
	.allow_peer2peer = true,
	.invalidate_mappings = rs_invalidate_mappings,
};

static int rs_open(struct inode *inode, struct file *file)
{
	struct rs_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	file->private_data = f;
	return 0;
}

static int rs_release(struct inode *inode, struct file *file)
{
	struct rs_file *f = file->private_data;
	int i;

	for (i = 0; i < f->count; i++) {
		dma_buf_detach(f->imports[i].dmabuf, f->imports[i].attach);
		dma_buf_put(f->imports[i].dmabuf);
	}
	kfree(f);
	return 0;
}

static long rs_attach(struct rs_file *f, struct rs_attach_req __user *arg)
{
	struct rs_attach_req req;
	struct rs_import *imp;
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	long ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	dmabuf = dma_buf_get(req.fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	mutex_lock(&f->lock);
	if (f->count == RS_MAX_ATTACH) {
		ret = -ENOSPC;
		goto out_put;
	}
	imp = &f->imports[f->count];
	imp->delay_us = req.delay_us;
	attach = dma_buf_dynamic_attach(dmabuf, rs_misc.this_device, &rs_importer_ops, imp);
	if (IS_ERR(attach)) {
		ret = PTR_ERR(attach);
		goto out_put;
	}
	imp->dmabuf = dmabuf;
	imp->attach = attach;
	ret = ++f->count;
	mutex_unlock(&f->lock);
	return ret;
out_put:
	mutex_unlock(&f->lock);
	dma_buf_put(dmabuf);
	return ret;
}

static long rs_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	u64 n;

	switch (cmd) {
	case RS_IMPORTER_ATTACH:
		return rs_attach(file->private_data, (struct rs_attach_req __user *)arg);
	case RS_IMPORTER_NOTIFIED:
		n = atomic64_read(&rs_notified);
		return copy_to_user((void __user *)arg, &n, sizeof(n)) ? -EFAULT : 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations rs_fops = {
	.owner = THIS_MODULE,
	.open = rs_open,
	.release = rs_release,
	.unlocked_ioctl = rs_ioctl,
};

static struct miscdevice rs_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "rs_importer",
	.fops = &rs_fops,
};

module_misc_device(rs_misc);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("revokescope kernel lab: dynamic DMABUF importer with a configurable invalidate delay");
MODULE_IMPORT_NS("DMA_BUF");
