/* reload.h: SIGHUP and watch_plugin_dir. A reload re-reads the config and
 * rescans the plugin directory off the loop, builds a complete new
 * generation there (running init of new instances too), publishes it on
 * the loop with one pointer swap, tells sessions whose lists changed, and
 * lets the instances the new generation dropped drain, reporting those that
 * stay busy past limits.drain_timeout_ms as stuck. One reload runs at a
 * time; requests during one coalesce into one more.
 *
 * Layers: the top, just under main.c: it drives the loader, the registry
 * and instances, and hands the new config to the protocol and the
 * transports. Loop thread only. */
#ifndef PH_RELOAD_H
#define PH_RELOAD_H

#include "config.h"

#include <uv.h>

/* Starts the stuck-instance check and, when cfg asks for it, the watch of
 * the plugin directory. cfg is the published generation's (borrowed; from
 * here on reload tracks the current one); config_path, department and
 * cache_dir are borrowed for the life of the process. Returns 0 or
 * libuv's error. */
int ph__reload_init(uv_loop_t *loop, const char *config_path,
                    const char *department, const char *cache_dir,
                    const ph__config *cfg);

/* Starts a reload, or asks for one more after the one running. */
void ph__reload_start(void);

/* Non-zero while a reload builds off the loop: shutdown waits for it. */
int ph__reload_running(void);

/* The config of the generation published last (borrowed; valid until the
 * next publish). */
const ph__config *ph__reload_config(void);

/* Shutdown begins: a reload still building is dropped when it ends, and no
 * other starts. */
void ph__reload_stop(void);

/* Closes the timers and the directory watch. */
void ph__reload_close(void);

/* Applies cfg's logging and metrics settings (log_level, log_format,
 * log_file, log_levels, metrics): at start-up and with every generation a
 * reload publishes. Loop thread. */
void ph__reload_apply_ops(const ph__config *cfg);

#endif
