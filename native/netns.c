/*
 * podlegs_netns: the one thing node-netlink cannot do — switch the calling
 * thread's network namespace. A netlink socket is bound to the namespace of
 * the thread that creates it, so the JS side calls setns() around socket
 * creation and switches straight back. Also flock(2) for the node lock: a lock
 * the kernel releases when its holder dies, which Node's fs cannot take. And
 * readSmallFiles: the file registry's directories read in one call (an agent
 * starting on a node that sees 20,000 members reads 20,000 files; from JS each
 * costs four fs calls and their objects, ~5x the syscalls' own time). And the thin
 * client's call to the node agent (agentConnect/agentExchange): blocking unix-socket I/O
 * from a process that has nothing else to do, where node's net module and its streams
 * cost more to load than the call itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, const char *op, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", op, strerror(err));
  napi_value text, error, num;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_throw(env, error);
  return NULL;
}

/* setns(fd, nstype) -> undefined; throws Error with .errno */
static napi_value js_setns(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, nstype = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &nstype) != napi_ok) {
    napi_throw_type_error(env, NULL, "setns(fd: number, nstype: number)");
    return NULL;
  }
  if (setns(fd, nstype) != 0) return throw_errno(env, "setns", errno);
  return NULL;
}

/* openLock(path) -> fd: O_RDWR|O_CREAT|O_CLOEXEC, so no child (IPAM plugin) inherits the lock */
static napi_value js_open_lock(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1], out;
  char file[4096];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], file, sizeof file, &len) != napi_ok || len >= sizeof file - 1) {
    napi_throw_type_error(env, NULL, "openLock(path: string)");
    return NULL;
  }
  int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return throw_errno(env, "open lock", errno);
  napi_create_int32(env, fd, &out);
  return out;
}

/* tryLock(fd) -> boolean: flock(LOCK_EX|LOCK_NB); false while another holds it. Never blocks. */
static napi_value js_try_lock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "tryLock(fd: number)");
    return NULL;
  }
  int rc;
  do rc = flock(fd, LOCK_EX | LOCK_NB); while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EWOULDBLOCK) return throw_errno(env, "flock", errno);
  napi_get_boolean(env, rc == 0, &out);
  return out;
}

/*
 * readSmallFiles(dir, max) -> [name, content, name, content, ...] for every entry of dir
 * whose name does not start with "." (temp files): content is the file's text (utf8) when
 * it is a regular file of at most max bytes, else a number: -1 larger than max, -2 not a
 * regular file (no symlink is followed), or the errno of open/read. Entries removed while
 * the directory is read are left out. A missing dir throws (errno ENOENT).
 */
static napi_value js_read_small_files(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0;
  napi_value argv[2], out, v;
  char dir[4096];
  int32_t max = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], dir, sizeof dir, &len) != napi_ok || len >= sizeof dir - 1 ||
      napi_get_value_int32(env, argv[1], &max) != napi_ok || max < 0 || max > (1 << 20)) {
    napi_throw_type_error(env, NULL, "readSmallFiles(dir: string, max: number)");
    return NULL;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return throw_errno(env, "open directory", errno);
  DIR *d = fdopendir(dfd);
  if (!d) { int e = errno; close(dfd); return throw_errno(env, "fdopendir", e); }
  char *buf = malloc((size_t)max + 1);
  if (!buf) { closedir(d); return throw_errno(env, "malloc", ENOMEM); }
  napi_create_array(env, &out);
  uint32_t n = 0;
  struct dirent *e;
  for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
    if (e->d_name[0] == '.') continue;
    int code = 0;
    ssize_t got = 0;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) code = errno;
      else type = S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
    }
    if (code == 0 && type != DT_REG) code = -2;
    if (code == 0) {
      /* O_NONBLOCK: a file swapped for a FIFO after readdir must not block us. */
      int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) code = errno == ELOOP ? -2 : errno;
      else {
        for (ssize_t r; got <= max; got += r) {
          do r = read(fd, buf + got, (size_t)(max + 1 - got)); while (r < 0 && errno == EINTR);
          if (r < 0) { code = errno; break; }
          if (r == 0) break;
        }
        close(fd);
        if (code == 0 && got > max) code = -1;
      }
    }
    if (code == ENOENT) continue; /* removed meanwhile */
    napi_create_string_utf8(env, e->d_name, NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, out, n++, v);
    if (code == 0) napi_create_string_utf8(env, buf, (size_t)got, &v);
    else napi_create_int32(env, code, &v);
    napi_set_element(env, out, n++, v);
  }
  int rerr = errno;
  free(buf);
  closedir(d);
  if (rerr != 0) return throw_errno(env, "readdir", rerr);
  return out;
}

/* agentConnect(path, timeoutMs) -> fd (close-on-exec), or -errno when there is no connection
 * (no socket, nobody listening, backlog full for timeoutMs). */
static napi_value js_agent_connect(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0;
  napi_value argv[2], out;
  struct sockaddr_un addr;
  int32_t timeout_ms = 0;
  memset(&addr, 0, sizeof addr);
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], addr.sun_path, sizeof addr.sun_path, &len) != napi_ok ||
      napi_get_value_int32(env, argv[1], &timeout_ms) != napi_ok || timeout_ms <= 0) {
    napi_throw_type_error(env, NULL, "agentConnect(path: string, timeoutMs: number)");
    return NULL;
  }
  int result;
  if (len >= sizeof addr.sun_path - 1) result = -ENAMETOOLONG;
  else {
    addr.sun_family = AF_UNIX;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) result = -errno;
    else {
      /* Bounds connect (a full backlog) and every send below. */
      struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      int rc;
      do rc = connect(fd, (struct sockaddr *)&addr, sizeof addr); while (rc != 0 && errno == EINTR);
      if (rc != 0) { result = -errno; close(fd); }
      else result = fd;
    }
  }
  napi_create_int32(env, result, &out);
  return out;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * agentExchange(fd, request, timeoutMs, max) -> [status, Buffer]: sends request whole, then
 * reads until a newline. status 0: a line (the Buffer ends with its newline); 1: the peer
 * closed (or reset) first, the Buffer holds what came; 2: no line within timeoutMs; 3: more
 * than max bytes without a newline. Never closes fd (agentClose does).
 */
static napi_value js_agent_exchange(napi_env env, napi_callback_info info) {
  size_t argc = 4, len = 0;
  napi_value argv[4], out, v;
  int32_t fd = -1, timeout_ms = 0, max = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &timeout_ms) != napi_ok || timeout_ms <= 0 ||
      napi_get_value_int32(env, argv[3], &max) != napi_ok || max <= 0) {
    napi_throw_type_error(env, NULL, "agentExchange(fd: number, request: string, timeoutMs: number, max: number)");
    return NULL;
  }
  char *req = malloc(len + 1);
  char *buf = malloc((size_t)max + 1);
  if (!req || !buf) { free(req); free(buf); return throw_errno(env, "malloc", ENOMEM); }
  napi_get_value_string_utf8(env, argv[1], req, len + 1, &len);
  int64_t deadline = now_ms() + timeout_ms;
  int status = -1;
  size_t got = 0;
  for (size_t sent = 0; sent < len;) {
    ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
    if (w >= 0) { sent += (size_t)w; continue; }
    if (errno == EINTR) continue;
    status = errno == EAGAIN || errno == EWOULDBLOCK ? 2 : 1; /* SO_SNDTIMEO ran out, or the peer is gone */
    break;
  }
  while (status < 0) {
    int64_t left = deadline - now_ms();
    if (left <= 0) { status = 2; break; }
    struct pollfd p = { fd, POLLIN, 0 };
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) { status = 2; break; }
    if (n < 0) { status = 1; break; }
    ssize_t r = read(fd, buf + got, (size_t)max + 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { status = 1; break; } /* EOF, or ECONNRESET */
    char *nl = memchr(buf + got, '\n', (size_t)r);
    got += (size_t)r;
    if (nl) { got = (size_t)(nl - buf) + 1; status = 0; }
    else if (got > (size_t)max) status = 3;
  }
  free(req);
  napi_create_array_with_length(env, 2, &out);
  napi_create_int32(env, status, &v);
  napi_set_element(env, out, 0, v);
  napi_create_buffer_copy(env, got, buf, NULL, &v);
  napi_set_element(env, out, 1, v);
  free(buf);
  return out;
}

/* agentClose(fd) */
static napi_value js_agent_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "agentClose(fd: number)");
    return NULL;
  }
  close(fd);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, flag;
  napi_create_function(env, "setns", NAPI_AUTO_LENGTH, js_setns, NULL, &fn);
  napi_set_named_property(env, exports, "setns", fn);
  napi_create_function(env, "openLock", NAPI_AUTO_LENGTH, js_open_lock, NULL, &fn);
  napi_set_named_property(env, exports, "openLock", fn);
  napi_create_function(env, "tryLock", NAPI_AUTO_LENGTH, js_try_lock, NULL, &fn);
  napi_set_named_property(env, exports, "tryLock", fn);
  napi_create_function(env, "readSmallFiles", NAPI_AUTO_LENGTH, js_read_small_files, NULL, &fn);
  napi_set_named_property(env, exports, "readSmallFiles", fn);
  napi_create_function(env, "agentConnect", NAPI_AUTO_LENGTH, js_agent_connect, NULL, &fn);
  napi_set_named_property(env, exports, "agentConnect", fn);
  napi_create_function(env, "agentExchange", NAPI_AUTO_LENGTH, js_agent_exchange, NULL, &fn);
  napi_set_named_property(env, exports, "agentExchange", fn);
  napi_create_function(env, "agentClose", NAPI_AUTO_LENGTH, js_agent_close, NULL, &fn);
  napi_set_named_property(env, exports, "agentClose", fn);
  napi_create_int32(env, CLONE_NEWNET, &flag);
  napi_set_named_property(env, exports, "CLONE_NEWNET", flag);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
