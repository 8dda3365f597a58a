/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-user wire format (QEMU docs/interop/vhost-user.rst) and the
 * stateless validation of one received message.
 */
#ifndef VBL_VU_MSG_H
#define VBL_VU_MSG_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/vhost.h>

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SEND_RARP = 19,
	VU_NET_SET_MTU = 20,
	VU_SET_BACKEND_REQ_FD = 21,
	VU_IOTLB_MSG = 22,
	VU_SET_VRING_ENDIAN = 23,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_CREATE_CRYPTO_SESSION = 26,
	VU_CLOSE_CRYPTO_SESSION = 27,
	VU_POSTCOPY_ADVISE = 28,
	VU_POSTCOPY_LISTEN = 29,
	VU_POSTCOPY_END = 30,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
	VU_GPU_SET_SOCKET = 33,
	VU_RESET_DEVICE = 34,
	VU_VRING_KICK = 35,
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_ADD_MEM_REG = 37,
	VU_REM_MEM_REG = 38,
	VU_SET_STATUS = 39,
	VU_GET_STATUS = 40,
	VU_REQUEST_MAX = 41,	/* first id we have never heard of */
};

/* Header flags. */
#define VU_VERSION_MASK		0x3u
#define VU_VERSION		0x1u
#define VU_FLAG_REPLY		(1u << 2)
#define VU_FLAG_NEED_REPLY	(1u << 3)

/* u64 payload of SET_VRING_KICK/CALL/ERR. */
#define VU_VRING_IDX_MASK	0xffull
#define VU_VRING_NOFD_MASK	(1ull << 8)

/* Virtio feature bit that enables the protocol-feature handshake. */
#define VU_F_PROTOCOL_FEATURES	30

/* Protocol feature bits. */
#define VU_PF_MQ		0
#define VU_PF_LOG_SHMFD		1
#define VU_PF_REPLY_ACK		3
#define VU_PF_BACKEND_REQ	5
#define VU_PF_CONFIG		9
#define VU_PF_INFLIGHT_SHMFD	12
#define VU_PF_RESET_DEVICE	13
#define VU_PF_INBAND_NOTIF	14
#define VU_PF_CONFIGURE_MEM_SLOTS 15
#define VU_PF_STATUS		16

/* What this back-end offers. */
#define VU_PROTOCOL_FEATURES	((1ull << VU_PF_MQ) | \
				 (1ull << VU_PF_REPLY_ACK) | \
				 (1ull << VU_PF_CONFIG) | \
				 (1ull << VU_PF_RESET_DEVICE))

#define VU_MAX_MEM_REGIONS	8	/* VHOST_MEMORY_BASELINE_NREGIONS */
#define VU_MAX_FDS		VU_MAX_MEM_REGIONS
#define VU_MAX_CONFIG_SIZE	256
#define VU_CONFIG_HDR_SIZE	12
#define VU_MAX_RING_SIZE	32768
#define VU_MAX_QUEUES		256

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
} __attribute__((packed));

struct vu_mem_msg {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VU_MAX_MEM_REGIONS];
} __attribute__((packed));

#define VU_MEM_HDR_SIZE		8

struct vu_config_msg {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VU_MAX_CONFIG_SIZE];
} __attribute__((packed));

/* Wire layouts of vhost_vring_state / vhost_vring_addr (no padding). */
struct vu_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
} __attribute__((packed));

union vu_payload {
	uint64_t u64;
	struct vu_vring_state state;
	struct vu_vring_addr addr;
	struct vu_mem_msg mem;
	struct vu_config_msg cfg;
	uint8_t raw[sizeof(struct vu_config_msg)];
};

#define VU_MAX_PAYLOAD		sizeof(union vu_payload)

struct vu_msg {
	struct vu_hdr hdr;
	union vu_payload p;
} __attribute__((packed));

/* Stateless limits the validator needs. */
struct vu_limits {
	unsigned int num_queues;	/* valid ring indexes are < this */
};

const char *vu_request_name(uint32_t request);

/*
 * Check everything that can be checked about one message without
 * knowing the connection state: header, exact payload size for the
 * request, descriptor count, queue index, ring size, memory regions.
 * Returns NULL if well formed, else a static reason string.
 */
const char *vu_msg_validate(const struct vu_msg *m, int nfds,
			    const struct vu_limits *lim);

/* Whether a request's reply is its own payload (GET_*). */
bool vu_request_has_reply(uint32_t request);

#endif
