"""Progress bars: tqdm when it is installed, else a plain one on stderr."""
import sys
import time


class _Plain:
    def __init__(self, total, desc):
        self.total, self.desc, self.n = total, desc, 0
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, k):
        self.n += k
        now = time.perf_counter()
        if now - self._last < 0.2 and self.n < self.total:
            return
        self._last = now
        w = 30
        fill = int(w * self.n / self.total) if self.total else w
        rate = self.n / max(now - self.t0, 1e-9)
        sys.stderr.write(f"\r{self.desc}: [{'#' * fill}{' ' * (w - fill)}] {self.n}/{self.total} {rate:.0f}/s ")
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()


def bar(total, desc):
    try:
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc)
    except ImportError:
        return _Plain(total, desc)
