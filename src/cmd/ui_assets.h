/*
 * ui_assets.h - the web UI's files, embedded into the flowvis binary.
 *
 * The Makefile builds ui/ with npm and esbuild into build/ui/ and turns
 * those files into $(BUILD)/gen/ui_assets.c with tools/embed_assets.c;
 * only the flowvis binary links it (the library and the tests do not), so
 * the aggregator gets the table through its config (fv_agg_cfg.ui_files).
 */
#ifndef FV_CMD_UI_ASSETS_H
#define FV_CMD_UI_ASSETS_H

#include <stddef.h>

#include "http/assets.h"

extern const struct fv_http_asset fv_ui_assets[];
extern const size_t fv_ui_assets_count;

#endif
