#!/usr/bin/env bash
# Derives integration/xen/bake-trace.csv, the bake-off's shared workload, from the Google cluster-data
# 2011 trace in the normalised format (../shared/traces/google2011/normalised.csv; Google ClusterData2011,
# CC-BY 4.0, as aggregated into per-job "VMs" by the HiPro-IT GCD_VMs set, see that folder's SOURCE.md).
# Attribution: "Google cluster-data 2011 (ClusterData2011_2), Google LLC, CC-BY 4.0"; derived data.
#
# Four job profiles, each a window of 90 samples (300 s apart in the source: 7.5 h), chosen by hand
# among those whose memory varies most within 90 samples and within their first 30 (the short run),
# with their busy phases at different times:
#   g1  vm_6194776414_4  from sample 0    high for the first ~9 samples, then low
#   g2  vm_2624991179_6  from sample 192  medium for ~20 samples, a peak, then low
#   g3  vm_6274806864_6  from sample 150  a spike at ~10, then a steady middle
#   g4  vm_5310458090_2  from sample 198  bursty throughout
# Each profile is scaled linearly (its own minimum → LO, maximum → HI) and time is compressed: one
# source sample every STEP seconds. mem_provisioned_kb is the guests' static-max. The file is the
# normalised CSV (vm_id = the guest's name; an extra column `source` names the profile and sample).
# Usage: bake-trace.sh [SRC] > bake-trace.csv
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${1:-$HERE/../../../shared/traces/google2011/normalised.csv}
[ -r "$SRC" ] || SRC=/work/shared/traces/google2011/normalised.csv
STEP=4 SAMPLES=90 LO_MIB=32 HI_MIB=224 MAX_MIB=384
awk -F, -v step=$STEP -v n=$SAMPLES -v lo=$((LO_MIB * 1024)) -v hi=$((HI_MIB * 1024)) -v max=$((MAX_MIB * 1024)) '
BEGIN {
    pick["vm_6194776414_4"] = "g1 0"; pick["vm_2624991179_6"] = "g2 192"
    pick["vm_6274806864_6"] = "g3 150"; pick["vm_5310458090_2"] = "g4 198"
    print "vm_id,t_seconds,mem_provisioned_kb,mem_used_kb,source"
}
NR > 1 && ($1 in pick) { i[$1]++; v[$1, i[$1] - 1] = $4 }
END {
    for (g = 1; g <= 4; g++) for (id in pick) {
        split(pick[id], p, " ")
        if (p[1] != "g" g) continue
        mn = 1e18; mx = -1
        for (s = 0; s < n; s++) { x = v[id, p[2] + s]; if (x < mn) mn = x; if (x > mx) mx = x }
        for (s = 0; s < n; s++) {
            x = v[id, p[2] + s]
            printf "%s,%d,%d,%d,%s@%d\n", p[1], s * step, max, lo + (x - mn) / (mx - mn) * (hi - lo), id, p[2] + s
        }
    }
}' "$SRC"
