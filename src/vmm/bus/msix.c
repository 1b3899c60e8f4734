/* MSI-X table, PBA and masking.  See msix.h.
 *
 * Facts used (PCI 3.0 6.8.2): capability = ID 0x11, next, message control
 * le16 (table size - 1 in bits 10:0, function mask bit 14, enable bit
 * 15), table offset | BIR le32, PBA offset | BIR le32; entry = address
 * le64, data le32, vector control le32 (bit 0 masked, set at reset). */
#include "vmm/bus/msix.h"

#include <string.h>

#include "common/log.h"
#include "vmm/bus/bus.h"
#include "vmm/bus/pci.h"

static uint32_t entry32(const struct msix *m, unsigned v, unsigned word)
{
	uint32_t x;
	memcpy(&x, m->table + v * MSIX_ENTRY_SIZE + 4 * word, 4);
	return x;
}

static bool vector_masked(const struct msix *m, unsigned v)
{
	return m->fmask || (entry32(m, v, 3) & 1);
}

static void deliver_pending(struct msix *m)
{
	if (!m->enabled)
		return;
	for (unsigned v = 0; v < m->nvec; v++) {
		if ((m->pba & (1ull << v)) && !vector_masked(m, v)) {
			m->pba &= ~(1ull << v);
			if (m->be.fire)
				m->be.fire(m->be.ctx, v);
		}
	}
}

void msix_reset(struct msix *m)
{
	pthread_mutex_lock(&m->lock);
	memset(m->table, 0, sizeof(m->table));
	for (unsigned v = 0; v < m->nvec; v++)
		m->table[v * MSIX_ENTRY_SIZE + 12] = 1;
	m->pba = 0;
	m->enabled = m->fmask = false;
	pthread_mutex_unlock(&m->lock);
}

int msix_init(struct msix *m, struct pci_device *d, unsigned nvec, unsigned bar, uint32_t table_off,
	      uint32_t pba_off, const struct msix_backend *be)
{
	memset(m, 0, sizeof(*m));
	if (nvec < 1 || nvec > MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS || table_off % 8 ||
	    pba_off % 8) {
		log_error("msix: bad layout (%u vectors, BAR %u)", nvec, bar);
		return -1;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->dev = d;
	m->nvec = nvec;
	if (be)
		m->be = *be;
	msix_reset(m);
	uint8_t cap[MSIX_CAP_LEN] = {MSIX_CAP_ID, 0};
	uint8_t wmask[MSIX_CAP_LEN] = {0};
	bus_store_le(cap + 2, 2, nvec - 1);
	bus_store_le(cap + 4, 4, table_off | bar);
	bus_store_le(cap + 8, 4, pba_off | bar);
	wmask[3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;
	int off = pci_device_add_capability(d, cap, sizeof(cap), wmask);
	if (off < 0)
		return -1;
	m->cap = (unsigned)off;
	return 0;
}

void msix_destroy(struct msix *m)
{
	if (m->dev)
		pthread_mutex_destroy(&m->lock);
	m->dev = NULL;
}

void msix_table_read(struct msix *m, uint64_t off, uint8_t *data, uint32_t len)
{
	memset(data, 0, len > 8 ? 8 : len);
	pthread_mutex_lock(&m->lock);
	uint64_t size = (uint64_t)m->nvec * MSIX_ENTRY_SIZE;
	if (off < size && len <= size - off)
		memcpy(data, m->table + off, len);
	pthread_mutex_unlock(&m->lock);
}

void msix_table_write(struct msix *m, uint64_t off, const uint8_t *data, uint32_t len)
{
	pthread_mutex_lock(&m->lock);
	uint64_t size = (uint64_t)m->nvec * MSIX_ENTRY_SIZE;
	if (off >= size || len > size - off || len > 8) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	unsigned first = (unsigned)(off / MSIX_ENTRY_SIZE),
		 last = (unsigned)((off + len - 1) / MSIX_ENTRY_SIZE);
	uint8_t before[2 * MSIX_ENTRY_SIZE];
	memcpy(before, m->table + first * MSIX_ENTRY_SIZE, (last - first + 1) * MSIX_ENTRY_SIZE);
	memcpy(m->table + off, data, len);
	/* Only bit 0 of vector control is writable. */
	for (unsigned v = first; v <= last; v++) {
		uint8_t *ctl = m->table + v * MSIX_ENTRY_SIZE + 12;
		ctl[0] &= 1;
		ctl[1] = ctl[2] = ctl[3] = 0;
		const uint8_t *old = before + (v - first) * MSIX_ENTRY_SIZE;
		if (memcmp(old, m->table + v * MSIX_ENTRY_SIZE, 12) && m->be.route)
			m->be.route(m->be.ctx, v,
				    (uint64_t)entry32(m, v, 0) | (uint64_t)entry32(m, v, 1) << 32,
				    entry32(m, v, 2));
	}
	deliver_pending(m);
	pthread_mutex_unlock(&m->lock);
}

void msix_pba_read(struct msix *m, uint64_t off, uint8_t *data, uint32_t len)
{
	pthread_mutex_lock(&m->lock);
	uint64_t pba = m->pba;
	pthread_mutex_unlock(&m->lock);
	for (uint32_t i = 0; i < len && i < 8; i++)
		data[i] = off + i < 8 ? (uint8_t)(pba >> (8 * (off + i))) : 0;
}

void msix_config_write(struct msix *m, unsigned reg, unsigned len)
{
	if (!m->dev || reg + len <= m->cap + 2 || reg >= m->cap + 4)
		return;
	uint16_t ctl = (uint16_t)pci_config_raw_get(m->dev, m->cap + 2, 2);
	pthread_mutex_lock(&m->lock);
	m->enabled = ctl & MSIX_CTRL_ENABLE;
	m->fmask = ctl & MSIX_CTRL_FMASK;
	deliver_pending(m);
	pthread_mutex_unlock(&m->lock);
}

bool msix_enabled(struct msix *m)
{
	pthread_mutex_lock(&m->lock);
	bool on = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return on;
}

void msix_notify(struct msix *m, unsigned v)
{
	pthread_mutex_lock(&m->lock);
	if (m->enabled && v < m->nvec) {
		if (vector_masked(m, v))
			m->pba |= 1ull << v;
		else if (m->be.fire)
			m->be.fire(m->be.ctx, v);
	}
	pthread_mutex_unlock(&m->lock);
}
