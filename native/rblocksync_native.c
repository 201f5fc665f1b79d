// rblocksync native helper: the few Linux syscalls Node does not expose (holes, SEEK_DATA, block
// ioctls). Every function is synchronous and throws an Error shaped like Node's system errors
// ({message: "CODE: description, syscall", code, errno (positive), syscall}).
// Context-aware (NAPI_MODULE_INIT, no global state), so it also loads inside worker_threads.
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#define NAPI_VERSION 8
#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <node_api.h>
#include "blake3/blake3.h"
#include "blake3/blake3_impl.h"

// A table, not strerrorname_np (glibc >= 2.32): the addon is shipped to older hosts beside the agent.
static const char *errno_name(int err) {
	switch (err) {
	case EDQUOT: return "EDQUOT";
	case EEXIST: return "EEXIST";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case ENODEV: return "ENODEV";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case EBADF: return "EBADF";
	case EACCES: return "EACCES";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case EFBIG: return "EFBIG";
	case ENOSPC: return "ENOSPC";
	case ESPIPE: return "ESPIPE";
	case EROFS: return "EROFS";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return "UNKNOWN";
	}
}

// Throws the system error for err and returns NULL, so callers can `return throw_errno(...)`.
static napi_value throw_errno(napi_env env, int err, const char *syscall) {
	const char *code = errno_name(err);
	char description[128];
	snprintf(description, sizeof description, "%s", strerror(err));
	description[0] = (char)tolower((unsigned char)description[0]);
	char message[256];
	snprintf(message, sizeof message, "%s: %s, %s", code, description, syscall);

	napi_value error, text, value;
	if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text) != napi_ok) return NULL;
	if (napi_create_error(env, NULL, text, &error) != napi_ok) return NULL;
	napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &value);
	napi_set_named_property(env, error, "code", value);
	napi_create_int32(env, err, &value);
	napi_set_named_property(env, error, "errno", value);
	napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
	napi_set_named_property(env, error, "syscall", value);
	napi_throw(env, error);
	return NULL;
}

// Reads `count` integer arguments into out[] (fd first); throws a TypeError and returns 0 on bad input.
static int get_args(napi_env env, napi_callback_info info, size_t count, int64_t *out) {
	napi_value argv[4];
	size_t argc = 4;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
	if (argc < count) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "too few arguments");
		return 0;
	}
	// NaN or 1.5 must not silently become offset 0 or 1 (int64 getters truncate): demand safe integers.
	for (size_t i = 0; i < count; i++) {
		double d;
		if (napi_get_value_double(env, argv[i], &d) != napi_ok || !(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) {
			napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "arguments must be safe integers");
			return 0;
		}
		napi_get_value_int64(env, argv[i], &out[i]);
	}
	return 1;
}

static napi_value number(napi_env env, int64_t n) {
	napi_value result;
	napi_create_int64(env, n, &result);
	return result;
}

static napi_value punch_hole(napi_env env, napi_callback_info info) {
	int64_t a[3];
	if (!get_args(env, info, 3, a)) return NULL;
	if (fallocate((int)a[0], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a[1], (off_t)a[2]) != 0) {
		return throw_errno(env, errno, "fallocate");
	}
	return NULL;
}

static napi_value seek(napi_env env, napi_callback_info info, int whence) {
	int64_t a[2];
	if (!get_args(env, info, 2, a)) return NULL;
	off_t at = lseek((int)a[0], (off_t)a[1], whence);
	if (at < 0) {
		if (whence == SEEK_DATA && errno == ENXIO) return number(env, -1);
		return throw_errno(env, errno, "lseek");
	}
	return number(env, at);
}

static napi_value seek_data(napi_env env, napi_callback_info info) {
	return seek(env, info, SEEK_DATA);
}

static napi_value seek_hole(napi_env env, napi_callback_info info) {
	return seek(env, info, SEEK_HOLE);
}

static napi_value block_device_size(napi_env env, napi_callback_info info) {
	int64_t a[1];
	if (!get_args(env, info, 1, a)) return NULL;
	uint64_t size = 0;
	if (ioctl((int)a[0], BLKGETSIZE64, &size) != 0) return throw_errno(env, errno, "ioctl");
	return number(env, (int64_t)size);
}

static napi_value zero_out(napi_env env, napi_callback_info info) {
	int64_t a[3];
	if (!get_args(env, info, 3, a)) return NULL;
	uint64_t range[2] = {(uint64_t)a[1], (uint64_t)a[2]};
	if (ioctl((int)a[0], BLKZEROOUT, range) != 0) return throw_errno(env, errno, "ioctl");
	return NULL;
}

static napi_value fadvise(napi_env env, napi_callback_info info) {
	int64_t a[4];
	if (!get_args(env, info, 4, a)) return NULL;
	int err = posix_fadvise((int)a[0], (off_t)a[1], (off_t)a[2], (int)a[3]);
	if (err != 0) return throw_errno(env, err, "posix_fadvise");
	return NULL;
}

// Starts writeback of [offset, offset+length) without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE): the
// disk writes a copy's data while more comes, so the closing fdatasync has little left to wait for.
static napi_value start_writeback(napi_env env, napi_callback_info info) {
	int64_t a[3];
	if (!get_args(env, info, 3, a)) return NULL;
	if (sync_file_range((int)a[0], (off_t)a[1], (off_t)a[2], SYNC_FILE_RANGE_WRITE) != 0) return throw_errno(env, errno, "sync_file_range");
	return NULL;
}

// The bytes of a Buffer or Uint8Array argument; throws a TypeError and returns 0 on anything else.
static int get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
	bool is_typed = false;
	if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a Buffer or Uint8Array");
		return 0;
	}
	napi_typedarray_type type;
	void *base = NULL;
	if (napi_get_typedarray_info(env, value, &type, length, &base, NULL, NULL) != napi_ok || type != napi_uint8_array) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a Buffer or Uint8Array");
		return 0;
	}
	*data = base;
	return 1;
}

// Widest block (in 1 KiB chunks) and most blocks hashed together by hash_wide.
#define WIDE_MAX_CHUNKS 16
#define WIDE_GROUP 64

// BLAKE3 of `count` whole blocks (indices in `group`) of `block` bytes, a power of two of 2 to 16
// chunks, each digest to out + index * 32. The same tree blake3_hasher builds, but each step runs
// across all the blocks in one blake3_hash_many call (full SIMD width, where one 4 KiB block has
// only 4 chunks): chunk j of every block, then each level of parents, the last with ROOT.
static void hash_wide(const uint8_t *input, size_t block, const size_t *group, size_t count, uint8_t *out) {
	uint8_t a[WIDE_GROUP * WIDE_MAX_CHUNKS * BLAKE3_OUT_LEN];
	uint8_t b[WIDE_GROUP * WIDE_MAX_CHUNKS * BLAKE3_OUT_LEN];
	uint8_t lane[WIDE_GROUP * BLAKE3_OUT_LEN];
	const uint8_t *inputs[WIDE_GROUP * WIDE_MAX_CHUNKS];
	size_t chunks = block / BLAKE3_CHUNK_LEN;
	for (size_t j = 0; j < chunks; j++) {
		for (size_t k = 0; k < count; k++) inputs[k] = input + group[k] * block + j * BLAKE3_CHUNK_LEN;
		blake3_hash_many(inputs, count, BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN, IV, j, false, 0, CHUNK_START, CHUNK_END, lane);
		for (size_t k = 0; k < count; k++) memcpy(a + (k * chunks + j) * BLAKE3_OUT_LEN, lane + k * BLAKE3_OUT_LEN, BLAKE3_OUT_LEN);
	}
	uint8_t *from = a, *to = b;
	for (size_t width = chunks; width > 1; width /= 2) {
		// Parents of each block's pairs: a parent's 64-byte input is its two children's CVs, side by side.
		size_t half = width / 2;
		for (size_t k = 0; k < count; k++) {
			for (size_t p = 0; p < half; p++) inputs[k * half + p] = from + (k * width + 2 * p) * BLAKE3_OUT_LEN;
		}
		uint8_t flags = PARENT | (width == 2 ? ROOT : 0);
		blake3_hash_many(inputs, count * half, 1, IV, 0, false, flags, 0, 0, to);
		uint8_t *swap = from;
		from = to;
		to = swap;
	}
	for (size_t k = 0; k < count; k++) memcpy(out + group[k] * BLAKE3_OUT_LEN, from + k * BLAKE3_OUT_LEN, BLAKE3_OUT_LEN);
}

// blake3Blocks(input, length, blockSize, out, outOffset, skip | null) -> blocks
// BLAKE3 (official C code, SIMD chosen at run time) of input[0, length) as blocks of blockSize bytes
// (the last may be shorter), one 32-byte digest per block into out at outOffset. Blocks whose skip
// flag is non-zero are not hashed. One call per batch: no per-block crossing into JavaScript.
static napi_value blake3_blocks(napi_env env, napi_callback_info info) {
	napi_value argv[6];
	size_t argc = 6;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
	if (argc < 6) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "too few arguments");
		return NULL;
	}
	uint8_t *input, *out, *skip = NULL;
	size_t input_length, out_length, skip_length = 0;
	double length_d, block_d, offset_d;
	if (!get_bytes(env, argv[0], &input, &input_length) || !get_bytes(env, argv[3], &out, &out_length)) return NULL;
	napi_valuetype skip_type;
	napi_typeof(env, argv[5], &skip_type);
	if (skip_type != napi_null && skip_type != napi_undefined && !get_bytes(env, argv[5], &skip, &skip_length)) return NULL;
	if (napi_get_value_double(env, argv[1], &length_d) != napi_ok || napi_get_value_double(env, argv[2], &block_d) != napi_ok ||
		napi_get_value_double(env, argv[4], &offset_d) != napi_ok) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "length, blockSize and outOffset must be numbers");
		return NULL;
	}
	if (!(length_d >= 0 && length_d <= (double)input_length && length_d == (double)(size_t)length_d) || !(block_d >= 1 && block_d == (double)(size_t)block_d) ||
		!(offset_d >= 0 && offset_d == (double)(size_t)offset_d)) {
		napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "length, blockSize or outOffset out of range");
		return NULL;
	}
	size_t length = (size_t)length_d, block = (size_t)block_d, offset = (size_t)offset_d;
	size_t blocks = (length + block - 1) / block;
	if (offset > out_length || blocks > (out_length - offset) / BLAKE3_OUT_LEN || (skip != NULL && skip_length < blocks)) {
		napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "out (or skip) is too small for the blocks");
		return NULL;
	}
	size_t wide = 0;
	size_t block_chunks = block / BLAKE3_CHUNK_LEN;
	if (block % BLAKE3_CHUNK_LEN == 0 && block_chunks >= 2 && block_chunks <= WIDE_MAX_CHUNKS && (block_chunks & (block_chunks - 1)) == 0) {
		// Full blocks of a power of two of 2-16 whole chunks, the only tree hash_wide builds: chunk j of many
		// blocks at once, at the full SIMD width. Any other size (a chunk digest's H(block digests) over a
		// partial last chunk: 32 bytes per block) takes the plain hasher below.
		size_t group[WIDE_GROUP];
		size_t count = 0;
		size_t full = length / block;
		for (size_t i = 0; i < full; i++) {
			if (skip != NULL && skip[i]) continue;
			group[count++] = i;
			if (count == WIDE_GROUP) {
				hash_wide(input, block, group, count, out + offset);
				count = 0;
			}
		}
		if (count > 0) hash_wide(input, block, group, count, out + offset);
		wide = full;
	}
	blake3_hasher hasher;
	for (size_t i = wide; i < blocks; i++) {
		if (skip != NULL && skip[i]) continue;
		size_t start = i * block;
		size_t size = length - start < block ? length - start : block;
		blake3_hasher_init(&hasher);
		blake3_hasher_update(&hasher, input + start, size);
		blake3_hasher_finalize(&hasher, out + offset + i * BLAKE3_OUT_LEN, BLAKE3_OUT_LEN);
	}
	return number(env, (int64_t)blocks);
}

// Advisory whole-file lock, never waiting: 1 exclusive, 0 shared. EWOULDBLOCK (EAGAIN) when held.
// It lives as long as the open file description, so closing the fd releases it.
static napi_value lock(napi_env env, napi_callback_info info) {
	int64_t a[2];
	if (!get_args(env, info, 2, a)) return NULL;
	int op = (a[1] ? LOCK_EX : LOCK_SH) | LOCK_NB;
	int rc;
	do {
		rc = flock((int)a[0], op);
	} while (rc != 0 && errno == EINTR);
	if (rc != 0) return throw_errno(env, errno, "flock");
	return NULL;
}

// ofdLock(fd, start, length) -> null, or [start, length, exclusive] of the first lock that another open file
// description holds on bytes [start, start+length) of the file open on fd (fcntl F_OFD_GETLK, testing a
// write lock, so a read lock conflicts too). QEMU takes such locks on the images it opens (block/file-posix.c:
// byte 100 + i for each permission bit i it holds, 200 + i for each it does not share). The kernel reports
// no pid for an OFD lock (-1), so the holder is found through /proc. length 0 means to the end of the file.
static napi_value ofd_lock(napi_env env, napi_callback_info info) {
	int64_t a[3];
	if (!get_args(env, info, 3, a)) return NULL;
#ifdef F_OFD_GETLK
	struct flock probe;
	memset(&probe, 0, sizeof probe);
	probe.l_type = F_WRLCK;
	probe.l_whence = SEEK_SET;
	probe.l_start = (off_t)a[1];
	probe.l_len = (off_t)a[2];
	if (fcntl((int)a[0], F_OFD_GETLK, &probe) != 0) return throw_errno(env, errno, "fcntl");
	napi_value result;
	if (probe.l_type == F_UNLCK) {
		napi_get_null(env, &result);
		return result;
	}
	napi_create_array_with_length(env, 3, &result);
	napi_set_element(env, result, 0, number(env, (int64_t)probe.l_start));
	napi_set_element(env, result, 1, number(env, (int64_t)probe.l_len));
	napi_value exclusive;
	napi_get_boolean(env, probe.l_type == F_WRLCK, &exclusive);
	napi_set_element(env, result, 2, exclusive);
	return result;
#else
	return throw_errno(env, ENOSYS, "fcntl");
#endif
}

// ofdReadLock(fd, start, length): takes an OFD read lock on [start, start+length) without waiting
// (F_OFD_SETLK, F_RDLCK; EAGAIN when a write lock is held there). It lives with the open file description,
// as QEMU's own do, so a QEMU that checks its lock bytes sees the image as taken.
static napi_value ofd_read_lock(napi_env env, napi_callback_info info) {
	int64_t a[3];
	if (!get_args(env, info, 3, a)) return NULL;
#ifdef F_OFD_SETLK
	struct flock lock;
	memset(&lock, 0, sizeof lock);
	lock.l_type = F_RDLCK;
	lock.l_whence = SEEK_SET;
	lock.l_start = (off_t)a[1];
	lock.l_len = (off_t)a[2];
	int rc;
	do {
		rc = fcntl((int)a[0], F_OFD_SETLK, &lock);
	} while (rc != 0 && errno == EINTR);
	if (rc != 0) return throw_errno(env, errno, "fcntl");
	return NULL;
#else
	return throw_errno(env, ENOSYS, "fcntl");
#endif
}

// shareFd(pid, fd) -> a new descriptor (close-on-exec) for the open file description that process
// `pid` has on `fd` (pidfd_open + pidfd_getfd, Linux >= 5.6). A flock lives as long as its open file
// description, so every worker that writes DST through the lock holder's description keeps that lock
// alive, even when the holder itself is killed. ESRCH: no such process; EBADF: it has no such fd;
// EPERM: not allowed to ptrace it (Yama ptrace_scope >= 1 without CAP_SYS_PTRACE); ENOSYS: too old a kernel.
static napi_value share_fd(napi_env env, napi_callback_info info) {
	int64_t a[2];
	if (!get_args(env, info, 2, a)) return NULL;
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)a[0], 0);
	if (pidfd < 0) return throw_errno(env, errno, "pidfd_open");
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)a[1], 0);
	int err = errno;
	close(pidfd);
	if (fd < 0) return throw_errno(env, err, "pidfd_getfd");
	return number(env, fd);
#else
	return throw_errno(env, ENOSYS, "pidfd_getfd");
#endif
}

// close(2) of an fd this module made (shareFd): Node warns when fs.closeSync closes, in a worker thread,
// an fd it did not open there ("closed but not opened in unmanaged mode").
static napi_value close_fd(napi_env env, napi_callback_info info) {
	int64_t a[1];
	if (!get_args(env, info, 1, a)) return NULL;
	if (close((int)a[0]) < 0) return throw_errno(env, errno, "close");
	return number(env, 0);
}

// zstd from Debian's libzstd1 (libzstd.so.1), opened at run time rather than linked: a helper uploaded to a
// host without it still loads (holes, BLAKE3), and zstdAvailable() says false there (HELLO then offers no zstd).
// The few functions used, with the signatures of zstd.h (stable API since zstd 1.0).
typedef struct zstd_ctx zstd_ctx;
static struct {
	zstd_ctx *(*create_cctx)(void);
	size_t (*free_cctx)(zstd_ctx *);
	size_t (*compress_cctx)(zstd_ctx *, void *, size_t, const void *, size_t, int);
	zstd_ctx *(*create_dctx)(void);
	size_t (*free_dctx)(zstd_ctx *);
	size_t (*decompress_dctx)(zstd_ctx *, void *, size_t, const void *, size_t);
	unsigned (*is_error)(size_t);
	const char *(*error_name)(size_t);
	int loaded;
} zstd;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

static void zstd_open(void) {
	void *lib = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) return;
	*(void **)&zstd.create_cctx = dlsym(lib, "ZSTD_createCCtx");
	*(void **)&zstd.free_cctx = dlsym(lib, "ZSTD_freeCCtx");
	*(void **)&zstd.compress_cctx = dlsym(lib, "ZSTD_compressCCtx");
	*(void **)&zstd.create_dctx = dlsym(lib, "ZSTD_createDCtx");
	*(void **)&zstd.free_dctx = dlsym(lib, "ZSTD_freeDCtx");
	*(void **)&zstd.decompress_dctx = dlsym(lib, "ZSTD_decompressDCtx");
	*(void **)&zstd.is_error = dlsym(lib, "ZSTD_isError");
	*(void **)&zstd.error_name = dlsym(lib, "ZSTD_getErrorName");
	zstd.loaded = zstd.create_cctx && zstd.free_cctx && zstd.compress_cctx && zstd.create_dctx && zstd.free_dctx &&
		zstd.decompress_dctx && zstd.is_error && zstd.error_name;
}

static int zstd_ready(void) {
	pthread_once(&zstd_once, zstd_open);
	return zstd.loaded;
}

// One compression and one decompression context per Node environment (thread), made on first use and
// freed with the environment: no allocation per frame.
typedef struct {
	zstd_ctx *cctx;
	zstd_ctx *dctx;
} instance_data;

static void free_instance(napi_env env, void *data, void *hint) {
	(void)env;
	(void)hint;
	instance_data *d = data;
	if (d->cctx) zstd.free_cctx(d->cctx);
	if (d->dctx) zstd.free_dctx(d->dctx);
	free(d);
}

static instance_data *instance(napi_env env) {
	instance_data *d = NULL;
	if (napi_get_instance_data(env, (void **)&d) == napi_ok && d != NULL) return d;
	d = calloc(1, sizeof *d);
	if (d == NULL || napi_set_instance_data(env, d, free_instance, NULL) != napi_ok) {
		free(d);
		return NULL;
	}
	return d;
}

static napi_value zstd_available(napi_env env, napi_callback_info info) {
	(void)info;
	napi_value result;
	napi_get_boolean(env, zstd_ready(), &result);
	return result;
}

// Reads (input, inputLength, out, fourth) with inputLength <= input's size; fourth: the level, or the output length.
static int zstd_args(napi_env env, napi_callback_info info, uint8_t **in, size_t *in_length, uint8_t **out, size_t *out_size, double *fourth) {
	napi_value argv[4];
	size_t argc = 4;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
	if (argc < 4) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "too few arguments");
		return 0;
	}
	size_t in_size;
	double length;
	if (!get_bytes(env, argv[0], in, &in_size) || !get_bytes(env, argv[2], out, out_size)) return 0;
	if (napi_get_value_double(env, argv[1], &length) != napi_ok || napi_get_value_double(env, argv[3], fourth) != napi_ok) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "lengths and level must be numbers");
		return 0;
	}
	if (!(length >= 0 && length <= (double)in_size && length == (double)(size_t)length)) {
		napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "input length out of range");
		return 0;
	}
	*in_length = (size_t)length;
	if (!zstd_ready()) {
		napi_throw_error(env, "ENOSYS", "zstd is unavailable: libzstd.so.1 cannot be loaded");
		return 0;
	}
	return 1;
}

// zstdCompress(input, length, out, level) -> bytes written to out, or 0 when they would not fit (not worth it).
static napi_value zstd_compress(napi_env env, napi_callback_info info) {
	uint8_t *in, *out;
	size_t in_length, out_size;
	double level;
	if (!zstd_args(env, info, &in, &in_length, &out, &out_size, &level)) return NULL;
	instance_data *d = instance(env);
	if (d == NULL || (d->cctx == NULL && (d->cctx = zstd.create_cctx()) == NULL)) {
		napi_throw_error(env, "ENOMEM", "cannot allocate a zstd context");
		return NULL;
	}
	size_t written = zstd.compress_cctx(d->cctx, out, out_size, in, in_length, (int)level);
	// dstSize_tooSmall: the output would be larger than the caller allows; any other error is one too.
	return number(env, zstd.is_error(written) ? 0 : (int64_t)written);
}

// zstdDecompress(input, length, out, expected) -> bytes; throws unless the frame decodes to exactly `expected` bytes.
static napi_value zstd_decompress(napi_env env, napi_callback_info info) {
	uint8_t *in, *out;
	size_t in_length, out_size;
	double expected;
	if (!zstd_args(env, info, &in, &in_length, &out, &out_size, &expected)) return NULL;
	if (!(expected >= 0 && expected <= (double)out_size)) {
		napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "out is smaller than the expected length");
		return NULL;
	}
	instance_data *d = instance(env);
	if (d == NULL || (d->dctx == NULL && (d->dctx = zstd.create_dctx()) == NULL)) {
		napi_throw_error(env, "ENOMEM", "cannot allocate a zstd context");
		return NULL;
	}
	// Capped at `expected`: a frame that says more fails (dstSize_tooSmall) rather than writing past it.
	size_t written = zstd.decompress_dctx(d->dctx, out, (size_t)expected, in, in_length);
	if (zstd.is_error(written)) {
		napi_throw_error(env, "EINVAL", zstd.error_name(written));
		return NULL;
	}
	if (written != (size_t)expected) {
		napi_throw_error(env, "EINVAL", "the frame decodes to fewer bytes than its length");
		return NULL;
	}
	return number(env, (int64_t)written);
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
	napi_value fn;
	napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
	napi_set_named_property(env, exports, name, fn);
}

static void export_int(napi_env env, napi_value exports, const char *name, int value) {
	napi_value n;
	napi_create_int32(env, value, &n);
	napi_set_named_property(env, exports, name, n);
}

NAPI_MODULE_INIT() {
	export_function(env, exports, "punchHole", punch_hole);
	export_function(env, exports, "closeFd", close_fd);
	export_function(env, exports, "seekData", seek_data);
	export_function(env, exports, "seekHole", seek_hole);
	export_function(env, exports, "blockDeviceSize", block_device_size);
	export_function(env, exports, "zeroOut", zero_out);
	export_function(env, exports, "fadvise", fadvise);
	export_function(env, exports, "startWriteback", start_writeback);
	export_function(env, exports, "lock", lock);
	export_function(env, exports, "shareFd", share_fd);
	export_function(env, exports, "ofdLock", ofd_lock);
	export_function(env, exports, "ofdReadLock", ofd_read_lock);
	export_function(env, exports, "blake3Blocks", blake3_blocks);
	export_function(env, exports, "zstdAvailable", zstd_available);
	export_function(env, exports, "zstdCompress", zstd_compress);
	export_function(env, exports, "zstdDecompress", zstd_decompress);
	export_int(env, exports, "POSIX_FADV_NORMAL", POSIX_FADV_NORMAL);
	export_int(env, exports, "POSIX_FADV_SEQUENTIAL", POSIX_FADV_SEQUENTIAL);
	export_int(env, exports, "POSIX_FADV_DONTNEED", POSIX_FADV_DONTNEED);
	return exports;
}
