// SPDX-License-Identifier: GPL-2.0
/* Stateless validation of vhost-user messages. */
#include <stddef.h>

#include "vu_msg.h"

static const char *const names[VU_REQUEST_MAX] = {
	[VU_GET_FEATURES] = "GET_FEATURES",
	[VU_SET_FEATURES] = "SET_FEATURES",
	[VU_SET_OWNER] = "SET_OWNER",
	[VU_RESET_OWNER] = "RESET_OWNER",
	[VU_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VU_SET_LOG_BASE] = "SET_LOG_BASE",
	[VU_SET_LOG_FD] = "SET_LOG_FD",
	[VU_SET_VRING_NUM] = "SET_VRING_NUM",
	[VU_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VU_SET_VRING_BASE] = "SET_VRING_BASE",
	[VU_GET_VRING_BASE] = "GET_VRING_BASE",
	[VU_SET_VRING_KICK] = "SET_VRING_KICK",
	[VU_SET_VRING_CALL] = "SET_VRING_CALL",
	[VU_SET_VRING_ERR] = "SET_VRING_ERR",
	[VU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[VU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VU_SEND_RARP] = "SEND_RARP",
	[VU_NET_SET_MTU] = "NET_SET_MTU",
	[VU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
	[VU_IOTLB_MSG] = "IOTLB_MSG",
	[VU_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
	[VU_GET_CONFIG] = "GET_CONFIG",
	[VU_SET_CONFIG] = "SET_CONFIG",
	[VU_CREATE_CRYPTO_SESSION] = "CREATE_CRYPTO_SESSION",
	[VU_CLOSE_CRYPTO_SESSION] = "CLOSE_CRYPTO_SESSION",
	[VU_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
	[VU_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
	[VU_POSTCOPY_END] = "POSTCOPY_END",
	[VU_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	[VU_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	[VU_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
	[VU_RESET_DEVICE] = "RESET_DEVICE",
	[VU_VRING_KICK] = "VRING_KICK",
	[VU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
	[VU_ADD_MEM_REG] = "ADD_MEM_REG",
	[VU_REM_MEM_REG] = "REM_MEM_REG",
	[VU_SET_STATUS] = "SET_STATUS",
	[VU_GET_STATUS] = "GET_STATUS",
};

const char *vu_request_name(uint32_t request)
{
	if (request < VU_REQUEST_MAX && names[request])
		return names[request];
	return "UNKNOWN";
}

bool vu_request_has_reply(uint32_t request)
{
	switch (request) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_VRING_BASE:
	case VU_GET_QUEUE_NUM:
	case VU_GET_CONFIG:
		return true;
	default:
		return false;
	}
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	/* Both ranges are non-empty and known not to wrap. */
	return a <= b + (blen - 1) && b <= a + (alen - 1);
}

static const char *check_mem(const struct vu_msg *m, int nfds)
{
	const struct vu_mem_msg *mem = &m->p.mem;
	uint32_t n, i, j;

	if (m->hdr.size < VU_MEM_HDR_SIZE)
		return "memory table: payload too short";
	n = mem->nregions;
	if (n == 0)
		return "memory table: no regions";
	if (n > VU_MAX_MEM_REGIONS)
		return "memory table: too many regions";
	/* QEMU sends exactly n regions; some front-ends send all 8 slots. */
	if (m->hdr.size != VU_MEM_HDR_SIZE + n * sizeof(struct vu_mem_region) &&
	    m->hdr.size != sizeof(struct vu_mem_msg))
		return "memory table: payload size does not match region count";
	if (nfds != (int)n)
		return "memory table: descriptor count does not match region count";
	for (i = 0; i < n; i++) {
		const struct vu_mem_region *r = &mem->regions[i];

		if (r->memory_size == 0)
			return "memory table: empty region";
		if (r->guest_phys_addr + (r->memory_size - 1) < r->guest_phys_addr)
			return "memory table: guest address range overflows";
		if (r->userspace_addr + (r->memory_size - 1) < r->userspace_addr)
			return "memory table: user address range overflows";
		if (r->mmap_offset + (r->memory_size - 1) < r->mmap_offset)
			return "memory table: mmap offset range overflows";
		if (r->memory_size > SIZE_MAX / 2 || r->mmap_offset > SIZE_MAX / 2)
			return "memory table: region too large";
		for (j = 0; j < i; j++) {
			const struct vu_mem_region *o = &mem->regions[j];

			if (overlap(r->guest_phys_addr, r->memory_size,
				    o->guest_phys_addr, o->memory_size))
				return "memory table: guest address ranges overlap";
			if (overlap(r->userspace_addr, r->memory_size,
				    o->userspace_addr, o->memory_size))
				return "memory table: user address ranges overlap";
		}
	}
	return NULL;
}

static const char *check_index(uint32_t index, const struct vu_limits *lim)
{
	if (index >= lim->num_queues)
		return "queue index out of range";
	return NULL;
}

const char *vu_msg_validate(const struct vu_msg *m, int nfds,
			    const struct vu_limits *lim)
{
	const struct vu_hdr *h = &m->hdr;
	uint32_t want_size = 0;
	int want_fds = 0;
	const char *why;

	if (nfds < 0 || nfds > VU_MAX_FDS)
		return "too many file descriptors";
	if ((h->flags & VU_VERSION_MASK) != VU_VERSION)
		return "unsupported protocol version";
	if (h->flags & VU_FLAG_REPLY)
		return "reply flag set on a request";
	if (h->flags & ~(VU_VERSION_MASK | VU_FLAG_NEED_REPLY))
		return "unknown header flags";
	if (h->size > VU_MAX_PAYLOAD)
		return "payload too large";
	if (h->request == 0 || h->request >= VU_REQUEST_MAX)
		return "request id out of range";

	switch (h->request) {
	case VU_GET_FEATURES:
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
	case VU_RESET_DEVICE:
		break;
	case VU_SET_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
		want_size = 8;
		break;
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		want_size = 8;
		if (h->size != want_size)
			break;
		if (m->p.u64 & ~(VU_VRING_IDX_MASK | VU_VRING_NOFD_MASK))
			return "unknown bits in vring file payload";
		want_fds = (m->p.u64 & VU_VRING_NOFD_MASK) ? 0 : 1;
		why = check_index((uint32_t)(m->p.u64 & VU_VRING_IDX_MASK), lim);
		if (why)
			return why;
		break;
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		want_size = sizeof(struct vu_vring_state);
		if (h->size != want_size)
			break;
		why = check_index(m->p.state.index, lim);
		if (why)
			return why;
		if (h->request == VU_SET_VRING_NUM) {
			uint32_t num = m->p.state.num;

			if (num == 0 || num > VU_MAX_RING_SIZE || (num & (num - 1)))
				return "ring size not a power of two <= 32768";
		} else if (h->request == VU_SET_VRING_BASE) {
			if (m->p.state.num > 0xffff)
				return "ring base out of range";
		} else if (h->request == VU_SET_VRING_ENABLE) {
			if (m->p.state.num > 1)
				return "ring enable value not 0 or 1";
		}
		break;
	case VU_SET_VRING_ADDR:
		want_size = sizeof(struct vu_vring_addr);
		if (h->size != want_size)
			break;
		why = check_index(m->p.addr.index, lim);
		if (why)
			return why;
		if (m->p.addr.flags & (1u << VHOST_VRING_F_LOG))
			return "ring dirty logging requested but not supported";
		if (m->p.addr.flags)
			return "unknown ring address flags";
		if (m->p.addr.desc_user_addr & 15)
			return "descriptor table misaligned";
		if (m->p.addr.avail_user_addr & 1)
			return "available ring misaligned";
		if (m->p.addr.used_user_addr & 3)
			return "used ring misaligned";
		break;
	case VU_SET_MEM_TABLE:
		return check_mem(m, nfds);
	case VU_GET_CONFIG:
	case VU_SET_CONFIG:
		if (h->size < VU_CONFIG_HDR_SIZE)
			return "config: payload too short";
		if (m->p.cfg.size == 0 || m->p.cfg.size > VU_MAX_CONFIG_SIZE)
			return "config: size out of range";
		if (h->size != VU_CONFIG_HDR_SIZE + m->p.cfg.size)
			return "config: payload size does not match config size";
		if (m->p.cfg.offset > VU_MAX_CONFIG_SIZE ||
		    m->p.cfg.offset + m->p.cfg.size > VU_MAX_CONFIG_SIZE)
			return "config: offset out of range";
		if (m->p.cfg.flags > 1)
			return "config: unknown flags";
		want_size = h->size;
		break;
	default:
		return "unsupported request";
	}
	if (h->size != want_size)
		return "wrong payload size for request";
	if (nfds != want_fds)
		return "wrong number of file descriptors for request";
	return NULL;
}
