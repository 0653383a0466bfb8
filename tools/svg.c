// tools/svg.c: SVG chart writer (see svg.h).
#define _POSIX_C_SOURCE 200809L
#include "tools/svg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct svg {
    char *buf;
    size_t len, cap;
    bool oom;
    double width, height;
};

static void put(struct svg *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct svg *s, const char *fmt, ...) {
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->oom = true;
            return;
        }
        if ((size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        size_t nc = (s->cap + (size_t)n + 1) * 2;
        char *nb = realloc(s->buf, nc);
        if (!nb) {
            s->oom = true;
            return;
        }
        s->buf = nb;
        s->cap = nc;
    }
}

// XML-escaped text content.
static void put_text(struct svg *s, const char *t) {
    for (; t && *t; t++) {
        switch (*t) {
        case '<': put(s, "&lt;"); break;
        case '>': put(s, "&gt;"); break;
        case '&': put(s, "&amp;"); break;
        case '"': put(s, "&quot;"); break;
        default:
            if ((unsigned char)*t < 0x20) put(s, " "); // control characters are not allowed in XML 1.0
            else put(s, "%c", *t);
        }
    }
}

struct svg *svg_create(double width, double height) {
    struct svg *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = 16384;
    s->buf = malloc(s->cap);
    if (!s->buf) {
        free(s);
        return NULL;
    }
    s->buf[0] = 0;
    s->width = width;
    s->height = height;
    put(s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
        "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
        "<rect x=\"0\" y=\"0\" width=\"%g\" height=\"%g\" fill=\"white\"/>\n",
        width, height, width, height, width, height);
    return s;
}

void svg_free(struct svg *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

const char *svg_text_so_far(struct svg *s) { return s->oom ? NULL : s->buf; }

int svg_save(const struct svg *s, const char *path) {
    if (s->oom) {
        errno = ENOMEM;
        return -1;
    }
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp) return -1;
    snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    static const char tail[] = "</svg>\n";
    size_t off = 0, total = s->len;
    int err = 0;
    while (!err && off < total) {
        ssize_t w = write(fd, s->buf + off, total - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) err = errno ? errno : EIO;
        else off += (size_t)w;
    }
    if (!err && write(fd, tail, sizeof tail - 1) != (ssize_t)(sizeof tail - 1)) err = errno ? errno : EIO;
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        free(tmp);
        errno = err;
        return -1;
    }
    free(tmp);
    return 0;
}

const char *svg_color(size_t i) {
    // Okabe-Ito: blue, vermillion, bluish green, orange, reddish purple, sky blue, yellow-ish dark, black
    static const char *pal[] = {"#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#8C7A00", "#000000"};
    return pal[i % (sizeof pal / sizeof pal[0])];
}

// ---------------------------------------------------------------- ranges and ticks

static double nice_step(double raw) {
    if (!(raw > 0) || !isfinite(raw)) return 1;
    double e = floor(log10(raw)), p = pow(10, e), f = raw / p;
    double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    return nf * p;
}

static void nice_linear(double *lo, double *hi) {
    if (!isfinite(*lo) || !isfinite(*hi)) {
        *lo = 0;
        *hi = 1;
    }
    if (*hi < *lo) {
        double t = *lo;
        *lo = *hi;
        *hi = t;
    }
    if (*hi == *lo) {
        double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= d;
        *hi += d;
    }
    double step = nice_step((*hi - *lo) / 5);
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
}

static void nice_log(double *lo, double *hi) {
    if (!(*lo > 0) || !isfinite(*lo)) *lo = *hi > 0 && isfinite(*hi) ? *hi / 10 : 0.1;
    if (!(*hi > 0) || !isfinite(*hi)) *hi = *lo * 10;
    if (*hi < *lo) {
        double t = *lo;
        *lo = *hi;
        *hi = t;
    }
    *lo = pow(10, floor(log10(*lo) + 1e-9));
    *hi = pow(10, ceil(log10(*hi) - 1e-9));
    if (*hi <= *lo) *hi = *lo * 10;
}

void svg_panel_nice(struct svg_panel *p) {
    if (p->xlog) nice_log(&p->x0, &p->x1);
    else nice_linear(&p->x0, &p->x1);
    if (p->ylog) nice_log(&p->y0, &p->y1);
    else nice_linear(&p->y0, &p->y1);
}

static void fit_axis(const double *v, size_t n, bool logscale, double *lo, double *hi) {
    double a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (logscale && !(v[i] > 0))) continue;
        a = fmin(a, v[i]);
        b = fmax(b, v[i]);
    }
    if (a > b) return; // nothing plottable: keep the range
    if (!logscale) {
        double pad = (b - a) * 0.06;
        a -= pad;
        b += pad;
    }
    *lo = a;
    *hi = b;
}

void svg_panel_fit(struct svg_panel *p, const double *x, const double *y, size_t n) {
    if (n) {
        if (x) fit_axis(x, n, p->xlog, &p->x0, &p->x1);
        if (y) fit_axis(y, n, p->ylog, &p->y0, &p->y1);
    }
    svg_panel_nice(p);
}

double svg_px(const struct svg_panel *p, double x) {
    double t = p->xlog ? (log10(x) - log10(p->x0)) / (log10(p->x1) - log10(p->x0)) : (x - p->x0) / (p->x1 - p->x0);
    return p->left + t * p->width;
}

double svg_py(const struct svg_panel *p, double y) {
    double t = p->ylog ? (log10(y) - log10(p->y0)) / (log10(p->y1) - log10(p->y0)) : (y - p->y0) / (p->y1 - p->y0);
    return p->top + (1 - t) * p->height;
}

static void fmt_tick(char *buf, size_t n, double v, double step, double amax) {
    if (fabs(v) < step * 1e-9) {
        snprintf(buf, n, "0");
        return;
    }
    if (amax >= 1e6 || amax < 1e-3) {
        // Scientific with the axis' common exponent and as many decimals as the step needs.
        int e = (int)floor(log10(amax));
        int dec = (int)ceil(-log10(step / pow(10, e)) - 1e-9);
        if (dec < 0) dec = 0;
        if (dec > 6) dec = 6;
        snprintf(buf, n, "%.*fe%d", dec, v / pow(10, e), e);
        return;
    }
    int dec = (int)ceil(-log10(step) - 1e-9);
    if (dec < 0) dec = 0;
    if (dec > 8) dec = 8;
    snprintf(buf, n, "%.*f", dec, v);
}

static void fmt_decade(char *buf, size_t n, int k) {
    if (k >= -4 && k <= 5) snprintf(buf, n, "%g", pow(10, k));
    else snprintf(buf, n, "1e%d", k);
}

void svg_label(struct svg *s, double x, double y, const char *anchor, double size, const char *color,
               const char *text) {
    put(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\" font-size=\"%g\" fill=\"%s\">", x, y, anchor, size,
        color ? color : "#222");
    put_text(s, text);
    put(s, "</text>\n");
}

void svg_title(struct svg *s, double x, double y, const char *text) {
    put(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\" fill=\"#111\">",
        x, y);
    put_text(s, text);
    put(s, "</text>\n");
}

// Ticks of one axis: calls back with (value, major) in data units.
struct tick {
    double v;
    bool major;
};

static size_t axis_ticks(double lo, double hi, bool logscale, struct tick *t, size_t max, double *step_out) {
    size_t n = 0;
    if (logscale) {
        int k0 = (int)floor(log10(lo) + 1e-9), k1 = (int)ceil(log10(hi) - 1e-9);
        int every = (k1 - k0) > 10 ? 2 : 1;
        for (int k = k0; k <= k1 && n < max; k++) {
            double dv = pow(10, k);
            if (dv >= lo * (1 - 1e-9) && dv <= hi * (1 + 1e-9)) t[n++] = (struct tick){dv, (k - k0) % every == 0};
            if (k1 - k0 <= 6)
                for (int m = 2; m <= 9 && n < max; m++) {
                    double v = m * dv;
                    if (v > lo && v < hi) t[n++] = (struct tick){v, false};
                }
        }
        *step_out = 0;
        return n;
    }
    double step = nice_step((hi - lo) / 5);
    *step_out = step;
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && n < max; v += step)
        t[n++] = (struct tick){v, true};
    return n;
}

void svg_axes(struct svg *s, const struct svg_panel *p) {
    double L = p->left, T = p->top, W = p->width, H = p->height, R = L + W, B = T + H;
    struct tick tk[128];
    double step;
    char buf[64];
    size_t ylab_chars = 1; // widest y tick label, to keep the axis title clear of it
    // grid + ticks, x
    size_t n = axis_ticks(p->x0, p->x1, p->xlog, tk, 128, &step);
    put(s, "<g stroke-width=\"1\">\n");
    for (size_t i = 0; i < n; i++) {
        double x = svg_px(p, tk[i].v);
        put(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\"/>\n", x, T, x, B,
            tk[i].major ? "#e3e3e3" : "#f2f2f2");
        put(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#444\"/>\n", x, B, x,
            B + (tk[i].major ? 5 : 3));
        if (!tk[i].major) continue;
        if (p->xlog) fmt_decade(buf, sizeof buf, (int)lround(log10(tk[i].v)));
        else fmt_tick(buf, sizeof buf, tk[i].v, step, fmax(fabs(p->x0), fabs(p->x1)));
        svg_label(s, x, B + 18, "middle", 11, "#333", buf);
    }
    n = axis_ticks(p->y0, p->y1, p->ylog, tk, 128, &step);
    for (size_t i = 0; i < n; i++) {
        double y = svg_py(p, tk[i].v);
        put(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\"/>\n", L, y, R, y,
            tk[i].major ? "#e3e3e3" : "#f2f2f2");
        put(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#444\"/>\n", L - (tk[i].major ? 5 : 3),
            y, L, y);
        if (!tk[i].major) continue;
        if (p->ylog) fmt_decade(buf, sizeof buf, (int)lround(log10(tk[i].v)));
        else fmt_tick(buf, sizeof buf, tk[i].v, step, fmax(fabs(p->y0), fabs(p->y1)));
        if (strlen(buf) > ylab_chars) ylab_chars = strlen(buf);
        svg_label(s, L - 8, y + 4, "end", 11, "#333", buf);
    }
    put(s, "</g>\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#444\"/>\n", L, T,
        W, H);
    if (p->xlabel) svg_label(s, L + W / 2, B + 40, "middle", 13, "#222", p->xlabel);
    if (p->ylabel) {
        put(s, "<text transform=\"translate(%.2f %.2f) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\" "
               "fill=\"#222\">",
            L - 18 - 6.5 * (double)ylab_chars, T + H / 2);
        put_text(s, p->ylabel);
        put(s, "</text>\n");
    }
    if (p->title) svg_title(s, L + W / 2, T - 14, p->title);
}

static bool plottable(const struct svg_panel *p, double x, double y) {
    return isfinite(x) && isfinite(y) && (!p->xlog || x > 0) && (!p->ylog || y > 0);
}

// Points are thinned per pixel column: within one column only the first, lowest, highest and last
// points are drawn, in order, so a 28,000-step loss curve keeps its exact envelope on screen in a
// few thousand points instead of one point per step (an SVG a browser opens quickly, small enough
// to commit).
struct col_pts {
    long col;
    size_t n, first, lo, hi, last;
};

static void col_flush(struct svg *s, const struct svg_panel *p, const double *x, const double *y, struct col_pts *c,
                      size_t *pts) {
    if (!c->n) return;
    size_t idx[4] = {c->first, c->lo < c->hi ? c->lo : c->hi, c->lo < c->hi ? c->hi : c->lo, c->last};
    size_t prev = (size_t)-1;
    for (int k = 0; k < 4; k++) {
        if (idx[k] == prev) continue;
        prev = idx[k];
        put(s, "%s%.2f,%.2f", (*pts)++ ? " " : "", svg_px(p, x[idx[k]]), svg_py(p, y[idx[k]]));
    }
    c->n = 0;
}

void svg_polyline(struct svg *s, const struct svg_panel *p, const double *x, const double *y, size_t n,
                  const char *color, double width, bool dashed) {
    bool open = false;
    size_t pts = 0;
    struct col_pts c = {0};
    for (size_t i = 0; i <= n; i++) {
        bool ok = i < n && plottable(p, x[i], y[i]);
        if (ok) {
            if (!open) {
                put(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" stroke-linejoin=\"round\"%s points=\"",
                    color, width, dashed ? " stroke-dasharray=\"6 4\"" : "");
                open = true;
                pts = 0;
            }
            long col = lround(floor(svg_px(p, x[i])));
            if (c.n && col != c.col) col_flush(s, p, x, y, &c, &pts);
            if (!c.n) c = (struct col_pts){.col = col, .n = 0, .first = i, .lo = i, .hi = i};
            if (y[i] < y[c.lo]) c.lo = i;
            if (y[i] > y[c.hi]) c.hi = i;
            c.last = i;
            c.n++;
        } else if (open) {
            col_flush(s, p, x, y, &c, &pts);
            put(s, "\"/>\n");
            open = false;
        }
    }
}

static void marker_at(struct svg *s, double px, double py, const char *color, int shape) {
    const double r = 5.5;
    switch (shape & 3) {
    case 0:
        put(s, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%g\" fill=\"%s\" stroke=\"white\" stroke-width=\"1.2\"/>\n", px,
            py, r, color);
        break;
    case 1:
        put(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%g\" height=\"%g\" fill=\"%s\" stroke=\"white\" "
               "stroke-width=\"1.2\"/>\n",
            px - r, py - r, 2 * r, 2 * r, color);
        break;
    case 2:
        put(s, "<polygon points=\"%.2f,%.2f %.2f,%.2f %.2f,%.2f\" fill=\"%s\" stroke=\"white\" stroke-width=\"1.2\"/>\n",
            px, py - r * 1.2, px - r * 1.1, py + r * 0.8, px + r * 1.1, py + r * 0.8, color);
        break;
    default:
        put(s, "<polygon points=\"%.2f,%.2f %.2f,%.2f %.2f,%.2f %.2f,%.2f\" fill=\"%s\" stroke=\"white\" "
               "stroke-width=\"1.2\"/>\n",
            px, py - r * 1.3, px + r * 1.3, py, px, py + r * 1.3, px - r * 1.3, py, color);
    }
}

void svg_marker(struct svg *s, const struct svg_panel *p, double x, double y, const char *color, int shape,
                const char *label) {
    if (!plottable(p, x, y)) return;
    double px = svg_px(p, x), py = svg_py(p, y);
    marker_at(s, px, py, color, shape);
    if (label && *label) {
        // Labels go right of the point, or left when the point sits in the right fifth of the panel.
        bool left = px > p->left + p->width * 0.8;
        svg_label(s, px + (left ? -9 : 9), py - 7, left ? "end" : "start", 12, color, label);
    }
}

void svg_arrow(struct svg *s, const struct svg_panel *p, double xa, double ya, double xb, double yb,
               const char *color) {
    if (!plottable(p, xa, ya) || !plottable(p, xb, yb)) return;
    double ax = svg_px(p, xa), ay = svg_py(p, ya), bx = svg_px(p, xb), by = svg_py(p, yb);
    double dx = bx - ax, dy = by - ay, len = hypot(dx, dy);
    if (len < 20) return; // too short to read as an arrow
    dx /= len;
    dy /= len;
    ax += 9 * dx;
    ay += 9 * dy;
    bx -= 10 * dx;
    by -= 10 * dy;
    put(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"1.3\" "
           "stroke-opacity=\"0.7\"/>\n",
        ax, ay, bx, by, color);
    double hx = bx - 8 * dx, hy = by - 8 * dy;
    put(s, "<polygon points=\"%.2f,%.2f %.2f,%.2f %.2f,%.2f\" fill=\"%s\" fill-opacity=\"0.7\"/>\n", bx, by,
        hx - 4 * dy, hy + 4 * dx, hx + 4 * dy, hy - 4 * dx, color);
}

void svg_legend(struct svg *s, const struct svg_panel *p, const char *const *labels, const char *const *colors,
                size_t n, bool lines, bool bottom) {
    if (n == 0) return;
    size_t maxc = 0;
    for (size_t i = 0; i < n; i++) maxc = strlen(labels[i]) > maxc ? strlen(labels[i]) : maxc;
    double row = 18, w = 40 + 7.0 * (double)maxc, h = row * (double)n + 10;
    if (w > p->width - 20) w = p->width - 20;
    double x = p->left + p->width - w - 10, y = bottom ? p->top + p->height - h - 10 : p->top + 10;
    put(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"white\" fill-opacity=\"0.9\" "
           "stroke=\"#bbb\"/>\n",
        x, y, w, h);
    for (size_t i = 0; i < n; i++) {
        double cy = y + 5 + row * ((double)i + 0.5);
        if (lines)
            put(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2.5\"/>\n",
                x + 8, cy, x + 30, cy, colors[i]);
        else marker_at(s, x + 19, cy, colors[i], (int)i);
        svg_label(s, x + 36, cy + 4, "start", 12, "#222", labels[i]);
    }
}
