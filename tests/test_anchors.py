"""k-means anchors (1 - IoU distance) recover the box shapes they were drawn from."""

import numpy as np
import pytest

from dlkit.data.anchors import kmeans_anchors


def test_kmeans_anchors_recovers_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.05, 0.08], [0.2, 0.15], [0.5, 0.6]])
    wh = np.concatenate([c * rng.uniform(0.95, 1.05, (50, 2)) for c in centres])
    anchors = kmeans_anchors(wh, 3)
    np.testing.assert_allclose(anchors, centres, rtol=0.06)
    assert np.all(np.diff(np.prod(anchors, 1)) > 0)  # sorted by area
    with pytest.raises(ValueError, match="at least 3"):
        kmeans_anchors(wh[:2], 3)
