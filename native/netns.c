/*
 * podlegs_netns: the one thing node-netlink cannot do — switch the calling
 * thread's network namespace. A netlink socket is bound to the namespace of
 * the thread that creates it, so the JS side calls setns() around socket
 * creation and switches straight back. Also flock(2) for the node lock: a lock
 * the kernel releases when its holder dies, which Node's fs cannot take. And
 * readSmallFiles: the file registry's directories read in one call (an agent
 * starting on a node that sees 20,000 members reads 20,000 files; from JS each
 * costs four fs calls and their objects, ~5x the syscalls' own time).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/file.h>
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
  napi_create_int32(env, CLONE_NEWNET, &flag);
  napi_set_named_property(env, exports, "CLONE_NEWNET", flag);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
