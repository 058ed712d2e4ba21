#!/usr/bin/env python3
"""The dashboard's panels drawn from real scrapes, where no Grafana is at hand (docs/metrics.png).

  metrics-plot.py scrape TEXTFILE OUT.jsonl --every 1 --seconds 180
      reads the daemon's node_exporter textfile every N seconds, as Prometheus would scrape it, and
      keeps every sample (one JSON line per scrape: wall time and {series: value});
  metrics-plot.py plot OUT.jsonl PNG [--speed S] [--domains a,b,c]
      draws dist/grafana-arbiter.json's panels from those samples with matplotlib (python3-matplotlib):
      per-domain target/actual/floor/demand, stall, host memory, round duration, rounds by trigger,
      rejections by code, lost rounds and push errors. Rates and quantiles are taken between
      successive scrapes, as PromQL's rate() and histogram_quantile() would.
This is not a Grafana screenshot: it is the same queries over the same samples, drawn by this script.
"""
import json
import re
import sys
import time

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = LINE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or '')] = float(m.group(3))
    return out


def labels(series):
    if '{' not in series:
        return series, {}
    name, rest = series.split('{', 1)
    return name, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def scrape(path, out, every, seconds):
    end = time.time() + seconds
    with open(out, 'w') as f:
        while time.time() < end:
            try:
                with open(path) as t:
                    f.write(json.dumps({'t': time.time(), 's': parse(t.read())}) + '\n')
                    f.flush()
            except FileNotFoundError:
                pass
            time.sleep(every)


def plot(inp, png, speed, only):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    scrapes = [json.loads(l) for l in open(inp)]
    t0 = scrapes[0]['t']
    # Minutes of simulated host time (the daemon ran the simulated host at `speed` seconds per second).
    xs = [(s['t'] - t0) * speed / 60 for s in scrapes]

    def series(name, **want):
        """{labels-tuple: [value or None per scrape]} for one metric name."""
        found = {}
        for i, s in enumerate(scrapes):
            for k, v in s['s'].items():
                n, l = labels(k)
                if n != name or any(l.get(a) != b for a, b in want.items()):
                    continue
                key = tuple(sorted(l.items()))
                found.setdefault(key, [None] * len(scrapes))[i] = v
        return found

    def increase(values):
        """Per-scrape increase of a counter (None where it did not exist)."""
        out = [None]
        for a, b in zip(values, values[1:]):
            out.append(None if a is None or b is None else max(0.0, b - a))
        return out

    gib = 1024 ** 3
    domains = only or sorted({dict(k)['domain'] for k in series('arbiter_domain_target_bytes')},
                             key=lambda d: int(next(dict(k)['domid'] for k in series('arbiter_domain_target_bytes', domain=d))))
    per_row = 3
    rows = (len(domains) + per_row - 1) // per_row
    fig = plt.figure(figsize=(16, 4.2 * (rows + 3)))
    grid = fig.add_gridspec(rows + 3, per_row, hspace=0.55, wspace=0.22, top=0.95)
    fig.suptitle('arbiter metrics from a real daemon run on the simulated host (default scenario, %g simulated s per s), '
                 'scraped from its node_exporter textfile every %.0f s\n'
                 'drawn by scripts/metrics-plot.py with dist/grafana-arbiter.json\'s panels and queries - not a Grafana screenshot'
                 % (speed, (scrapes[-1]['t'] - t0) / max(1, len(scrapes) - 1)), fontsize=11)

    def axis(r, c, title, ylabel, span=1):
        ax = fig.add_subplot(grid[r, c:c + span])
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xlabel('simulated minutes', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        return ax

    for i, d in enumerate(domains):
        ax = axis(i // per_row, i % per_row, 'Target, actual and floor: %s' % d, 'GiB')
        for name, style, lab in [('arbiter_domain_target_bytes', '-', 'target'), ('arbiter_domain_actual_bytes', '--', 'actual'),
                                 ('arbiter_domain_floor_bytes', ':', 'floor'), ('arbiter_domain_demand_bytes', '-.', 'demand')]:
            for _, v in series(name, domain=d).items():
                ax.plot(xs, [None if x is None else x / gib for x in v], style, label=lab, linewidth=1.2)
        ax.legend(fontsize=7, loc='upper right')

    r = rows
    ax = axis(r, 0, 'Stall (PSI some avg10)', 'share of time')
    for k, v in series('arbiter_domain_stall_ratio').items():
        if any(x for x in v if x):
            ax.plot(xs, v, label=dict(k)['domain'], linewidth=1)
    ax.legend(fontsize=7, ncol=2)
    ax = axis(r, 1, 'Host memory', 'GiB')
    for name, lab in [('arbiter_host_free_bytes', 'Xen free'), ('arbiter_host_reserve_bytes', 'kept free (reserve + held)'),
                      ('arbiter_host_shortfall_bytes', 'floors short by')]:
        for _, v in series(name).items():
            ax.plot(xs, [None if x is None else x / gib for x in v], label=lab, linewidth=1.2)
    ax.legend(fontsize=7)
    ax = axis(r, 2, 'Round duration (between scrapes)', 'ms')
    buckets = series('arbiter_round_duration_seconds_bucket')
    les = sorted(((float(dict(k)['le']), v) for k, v in buckets.items()), key=lambda p: p[0])
    for q in (0.5, 0.99):
        ys = [None]
        for i in range(1, len(xs)):
            incs = [(le, (v[i] or 0) - (v[i - 1] or 0)) for le, v in les]
            total = incs[-1][1] if incs else 0
            if total <= 0:
                ys.append(None)
                continue
            prev_le, prev_c, y = 0.0, 0.0, None
            for le, c in incs:
                if c >= q * total:
                    if le == float('inf'):
                        y = prev_le
                    else:
                        y = prev_le + (le - prev_le) * ((q * total - prev_c) / max(1e-9, c - prev_c))
                    break
                prev_le, prev_c = le, c
            ys.append(None if y is None else y * 1000)
        ax.plot(xs, ys, label='p%g' % (q * 100), linewidth=1.2)
    ax.legend(fontsize=7)

    r += 1
    ax = axis(r, 0, 'Rounds per scrape, by trigger', 'rounds')
    for k, v in series('arbiter_rounds_total').items():
        ax.plot(xs, increase(v), label=dict(k)['trigger'], linewidth=1)
    ax.legend(fontsize=7)
    ax = axis(r, 1, 'Report rejections by code (per scrape)', 'reports')
    for k, v in series('arbiter_report_rejections_total').items():
        ax.plot(xs, increase(v), label=dict(k)['code'], linewidth=1)
    ax.legend(fontsize=7)
    ax = axis(r, 2, 'Lost rounds, push errors, skipped rounds (totals)', 'count')
    for name, lab in [('arbiter_rounds_lost_total', 'rounds not recorded'), ('arbiter_push_errors_total', 'target writes failed'),
                      ('arbiter_rounds_skipped_total', 'host unreadable')]:
        for _, v in series(name).items():
            ax.plot(xs, v, label=lab, linewidth=1.2)
    ax.legend(fontsize=7)

    r += 1
    ax = axis(r, 0, 'Target changes (per scrape)', 'targets pushed')
    for _, v in series('arbiter_target_changes_total').items():
        ax.plot(xs, increase(v), linewidth=1)
    ax = axis(r, 1, 'Phase', '', span=2)
    phases = ['uncontended', 'contended', 'infeasible']
    for j, p in enumerate(phases):
        for _, v in series('arbiter_round_phase', phase=p).items():
            ax.fill_between(xs, j, [j + 0.8 if x == 1 else j for x in [x or 0 for x in v]], step='post', label=p)
    ax.set_yticks([j + 0.4 for j in range(len(phases))], phases)
    fig.savefig(png, dpi=72, bbox_inches='tight')


def main(argv):
    def opt(name, default):
        return argv[argv.index(name) + 1] if name in argv else default
    if len(argv) >= 4 and argv[1] == 'scrape':
        scrape(argv[2], argv[3], float(opt('--every', '1')), float(opt('--seconds', '180')))
    elif len(argv) >= 4 and argv[1] == 'plot':
        only = opt('--domains', '')
        plot(argv[2], argv[3], float(opt('--speed', '1')), only.split(',') if only else None)
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
