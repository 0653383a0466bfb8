// tools/svg.h: a small SVG chart writer for the CLI (plots from `sembed analyze`, training logs).
//
// A document holds any number of panels; a panel maps data coordinates (linear or log10 on each
// axis) onto a pixel rectangle, and draws axes with "nice" ticks (steps of 1, 2 or 5 x 10^k;
// decades with minor ticks on log axes), grid, labels, lines, point markers with text labels,
// and a legend. Output is plain SVG 1.1 that browsers and rsvg render; all text is XML-escaped.
//
//     struct svg *s = svg_create(640, 420);
//     struct svg_panel p = {.left = 70, .top = 40, .width = 540, .height = 320,
//                           .title = "Spectrum", .xlabel = "index", .ylabel = "sigma / sigma_max", .ylog = true};
//     svg_panel_fit(&p, xs, ys, n);            // or set x0/x1/y0/y1 by hand, then svg_panel_nice()
//     svg_axes(s, &p);
//     svg_polyline(s, &p, xs, ys, n, svg_color(0), 2, false);
//     svg_save(s, "spectrum.svg");             // temp file + rename
//     svg_free(s);
#ifndef SEMBED_TOOLS_SVG_H
#define SEMBED_TOOLS_SVG_H

#include <stdbool.h>
#include <stddef.h>

struct svg;

struct svg_panel {
    double left, top, width, height; // plot area in pixels (ticks and labels are drawn outside it)
    double x0, x1, y0, y1;           // data range shown (for log axes: positive)
    bool xlog, ylog;
    const char *title, *xlabel, *ylabel; // may be NULL
};

// NULL on allocation failure.
struct svg *svg_create(double width, double height);
void svg_free(struct svg *s);
// Write atomically (temporary file in the same folder, fsync, rename). 0, or -1 with errno set
// (ENOMEM if any earlier drawing call ran out of memory).
int svg_save(const struct svg *s, const char *path);
// The document so far (valid until the next drawing call); NULL after an allocation failure.
const char *svg_text_so_far(struct svg *s);

// Colour i of a palette of 8 that stays distinguishable for colour-blind readers (Okabe & Ito 2008).
const char *svg_color(size_t i);

// Set the range to cover the finite points (x[i], y[i]) (positive ones on log axes), then round it
// outwards to nice ticks. Points may be NULL for an axis left unchanged; n == 0 keeps the range.
void svg_panel_fit(struct svg_panel *p, const double *x, const double *y, size_t n);
// Widen x0..x1 and y0..y1 to tick boundaries (and give empty ranges some width).
void svg_panel_nice(struct svg_panel *p);

// Data -> pixel coordinates.
double svg_px(const struct svg_panel *p, double x);
double svg_py(const struct svg_panel *p, double y);

// Frame, grid, ticks, tick labels, axis labels and the title of a panel.
void svg_axes(struct svg *s, const struct svg_panel *p);
// A line through the points in order; non-finite points (or non-positive ones on log axes) break it.
void svg_polyline(struct svg *s, const struct svg_panel *p, const double *x, const double *y, size_t n,
                  const char *color, double width, bool dashed);
// A marker (shape 0 circle, 1 square, 2 triangle, 3 diamond) with an optional label beside it.
void svg_marker(struct svg *s, const struct svg_panel *p, double x, double y, const char *color, int shape,
                const char *label);
// An arrow from (x0, y0) to (x1, y1) in data coordinates, stopping short of the end point.
void svg_arrow(struct svg *s, const struct svg_panel *p, double xa, double ya, double xb, double yb,
               const char *color);
// Legend box in the panel's top-right (or bottom-right) corner: a line (lines) or marker per entry.
void svg_legend(struct svg *s, const struct svg_panel *p, const char *const *labels, const char *const *colors,
                size_t n, bool lines, bool bottom);
// Free text at pixel coordinates; anchor "start", "middle" or "end".
void svg_label(struct svg *s, double x, double y, const char *anchor, double size, const char *color,
               const char *text);

// A bold centred title at pixel coordinates.
void svg_title(struct svg *s, double x, double y, const char *text);

#endif
