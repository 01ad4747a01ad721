/*
 * podlegs_netns: the one thing node-netlink cannot do — switch the calling
 * thread's network namespace. A netlink socket is bound to the namespace of
 * the thread that creates it, so the JS side calls setns() around socket
 * creation and switches straight back. Also flock(2) for the node lock: a lock
 * the kernel releases when its holder dies, which Node's fs cannot take.
 */
#define _GNU_SOURCE
#include <errno.h>
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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, flag;
  napi_create_function(env, "setns", NAPI_AUTO_LENGTH, js_setns, NULL, &fn);
  napi_set_named_property(env, exports, "setns", fn);
  napi_create_function(env, "openLock", NAPI_AUTO_LENGTH, js_open_lock, NULL, &fn);
  napi_set_named_property(env, exports, "openLock", fn);
  napi_create_function(env, "tryLock", NAPI_AUTO_LENGTH, js_try_lock, NULL, &fn);
  napi_set_named_property(env, exports, "tryLock", fn);
  napi_create_int32(env, CLONE_NEWNET, &flag);
  napi_set_named_property(env, exports, "CLONE_NEWNET", flag);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
