// Weights prepared once per process: the packed or Winograd-transformed copies that DirectConv
// and ResidualStack make of a W on their first run, shared by every kernel that prepares the same
// W the same way.
//
// Why: each ONNX Runtime session has kernels of its own, and a server holds several sessions of
// one voice (different thread counts) over the same shared initializers (SharedWeights.swift),
// so per-kernel copies multiplied the prepared weights by the number of sessions: tens of MB per
// voice once the flow's convolutions took the Winograd path (8/5 of W per F(4,5) convolution).
#include "direct_conv.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct Entry {
    const void *source;
    uint64_t key;
    void *data;
    int64_t users;
    struct Entry *next;
} Entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Entry *entries;

uint64_t lark_prepared_key(const int64_t *fields, int count) {
    uint64_t hash = 0xcbf29ce484222325u;  // FNV-1a over the fields' bytes
    for (int i = 0; i < count; i++) {
        uint64_t value = (uint64_t)fields[i];
        for (int b = 0; b < 8; b++, value >>= 8) hash = (hash ^ (value & 0xff)) * 0x100000001b3u;
    }
    return hash;
}

void *lark_acquire_prepared(const void *source, uint64_t key, void *(*prepare)(void *context), void *context) {
    pthread_mutex_lock(&lock);
    for (Entry *entry = entries; entry; entry = entry->next) {
        if (entry->source == source && entry->key == key) {
            entry->users++;
            pthread_mutex_unlock(&lock);
            return entry->data;
        }
    }
    // Prepared under the lock: another session's kernel asking for the same W waits for this copy
    // instead of making its own (packing takes milliseconds, once per W).
    Entry *entry = malloc(sizeof *entry);
    void *data = entry ? prepare(context) : NULL;
    if (data) {
        *entry = (Entry){.source = source, .key = key, .data = data, .users = 1, .next = entries};
        entries = entry;
    } else {
        free(entry);
    }
    pthread_mutex_unlock(&lock);
    return data;
}

void lark_release_prepared(void *data) {
    if (!data) return;
    pthread_mutex_lock(&lock);
    for (Entry **link = &entries; *link; link = &(*link)->next) {
        Entry *entry = *link;
        if (entry->data != data) continue;
        if (--entry->users == 0) {
            *link = entry->next;
            free(entry->data);
            free(entry);
        }
        break;
    }
    pthread_mutex_unlock(&lock);
}
