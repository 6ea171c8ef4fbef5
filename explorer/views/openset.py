"""Open set: does the decision tell signs it knows from signs it does not? Known vs unknown score
distributions, the rejection curve, AUROC, and the false accepts at the served operating point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer import backend, data, openset, plots, ui

st.title("Open set")
bundle, evaluation = ui.load()
bundle_dir, _ = ui.current_paths()
idle = set(bundle.bundle.idle_labels)

st.text_input("Negatives file (optional): every clip in it counts as an unknown sign", key="negatives_path",
              placeholder="e.g. a SignSeek dataset of other-language clips",
              help="Any dataset the explorer opens. Besides it, the loaded file's clips of labels the bundle "
                   "does not have count as unknown.")
negatives = None
negatives_path = (st.session_state.get("negatives_path") or "").strip()
if negatives_path:
    try:
        data.cached_dataset(negatives_path)
        negatives = ui.evaluation_for(bundle_dir, negatives_path).records
        overlap = sorted(set(negatives.loc[negatives["known"], "label"].astype(str)))
        if overlap:
            st.warning(f"{int(negatives['known'].sum())} clips of the negatives file carry labels the bundle knows "
                       f"({', '.join(overlap[:8])}{'...' if len(overlap) > 8 else ''}); they count as unknown all the "
                       "same. A negatives file should hold only signs the deployment must reject.")
    except data.ExplorerError as exc:
        st.error(f"Negatives file: {exc}")

table = openset.openset_table(evaluation.records, idle, negatives)
models = sorted(table["model"].unique())
model = st.radio("Model", models, horizontal=True, key="open_model",
                 help="Scores of different models are on different scales: one at a time.") if len(models) > 1 \
    else models[0]
table = table[table["model"] == model]
n_known, n_unknown = int((~table["unknown"]).sum()), int(table["unknown"].sum())
st.caption(f"{n_known} clips of known signs, {n_unknown} of unknown ones "
           f"({int((table['origin'] == 'negatives file').sum())} from the negatives file); idle clips left out. "
           f"Score: the engine's own unknown-score (answered by {model}; higher: more like a known sign).")
if not n_known or not n_unknown:
    st.info("Open-set numbers need clips of both kinds: load a file with signs the bundle lacks, or pick a "
            "negatives file above. The known clips' scores are still shown.")

result = openset.summary(table)
cols = st.columns(5)
cols[0].metric("AUROC (known vs unknown)", f"{result['auroc']:.4f}")
cols[1].metric("False accepts at 95% known kept", f"{result['fpr_at_95tpr']:.4f}")
cols[2].metric("Known accepted (served)", f"{result['known_accepted']:.4f}")
cols[3].metric("Precision of accepted (served)", f"{result['precision']:.4f}")
lo, hi = result["false_accept_ci"]
cols[4].metric("Unknown false accepts (served)", f"{result['false_accepts']} of {n_unknown}",
               help=f"rate {result['false_accept_rate']:.3f}, Wilson 95% interval {lo:.3f} to {hi:.3f}")

served_threshold = float(bundle.thresholds.get(backend.SCORE_PARAMETER, np.nan)) if model == "encoder" else None
scores = table["unknown_score"].to_numpy(dtype=np.float64)
st.plotly_chart(plots.known_unknown_histogram(scores[~table["unknown"].to_numpy()],
                                              scores[table["unknown"].to_numpy()], served_threshold,
                                              "unknown-score (higher: more like a known sign)"),
                key="open_hist")
if n_known and n_unknown:
    served = (result["false_accept_rate"], result["known_accepted"])
    st.plotly_chart(plots.rejection_curve(openset.curve(table), served), key="open_curve")
    st.caption("The curve: known and unknown clips kept as a threshold on the unknown-score sweeps (what AUROC "
               "summarises). The dot: what the served rule does (all its gates, at the bundle's settings)."
               + (f" The dashed line in the histogram: {backend.SCORE_PARAMETER}, where P(known) = 0.5."
                  if model == "encoder" else ""))

st.subheader("Unknown clips accepted (served)")
fa = table[table["unknown"] & table["accepted"]]
st.dataframe(pd.DataFrame({"origin": fa["origin"], "clip": fa["query"], "label": fa["label"],
                           "answered": fa["answer"], "score": fa["score"].round(4),
                           "confidence": fa["confidence"].round(4)}),
             hide_index=True, key="open_false_accepts")
