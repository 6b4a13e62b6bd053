"""Figure for docs/amg.md: an attributed planted-partition graph clustered by
AMGSpectralClustering (bootstrap AMG embedding), coloured by label, and the
embedding itself.  Writes docs/img/amg_clustering.png.

Run: python docs/scripts/amg_clustering_figure.py
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import normalized_mutual_info_score as nmi  # noqa: E402

from krylovlab.amg import AMGSpectralClustering  # noqa: E402
from krylovlab.amg.graphs import planted_partition  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "img", "amg_clustering.png")


def main():
    W, truth = planted_partition(400, 4, 9, 1.2, rng=3)
    est = AMGSpectralClustering(4, embedding="bootstrap-amg", random_state=0).fit(W)
    labels = est.labels_
    G = nx.from_scipy_sparse_array(W)
    pos = nx.spring_layout(G, seed=2, iterations=60)
    cmap = plt.get_cmap("tab10")
    colours = [cmap(int(c)) for c in labels]
    fig, ax = plt.subplots(1, 2, figsize=(11, 5))
    nx.draw_networkx_edges(G, pos, ax=ax[0], alpha=0.08, width=0.5)
    nx.draw_networkx_nodes(G, pos, ax=ax[0], node_size=14, node_color=colours, linewidths=0)
    ax[0].set_title(f"planted partition, 400 vertices, 4 clusters\n"
                    f"AMG spectral clustering: NMI {nmi(truth, labels):.3f}, modularity {est.modularity_:.3f}")
    ax[0].axis("off")
    U = est.embedding_
    # the first embedding column is the (scaled) constant vector: plot the next two
    U = U / np.linalg.norm(U, axis=0)
    ax[1].scatter(U[:, 1], U[:, 2], s=10, c=colours, linewidths=0)
    ax[1].set_xlabel("embedding coordinate 2")
    ax[1].set_ylabel("embedding coordinate 3")
    ax[1].set_title("bootstrap-AMG embedding, coloured by label")
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
