"""Selection methods: one module each, found by name through the registry in :mod:`.base`.

Importing this package registers every built-in method:

========================  ===================================================================
``random``                uniform sample (:mod:`.random`)
``kcenter``               k-center greedy coverage (:mod:`.kcenter`)
``kmeans-centroid``       nearest example to each of ``n_select`` k-means centroids
``ltd``                   k-means, then k-center greedy inside each cluster (:mod:`.ltd`)
``facility-location``     lazy greedy facility location on a kNN graph
``neuron-coverage``       weighted neuron-activation coverage on raw activations (MADS)
``similarity-filter``     DEITA-style walk by priority skipping near-duplicates
``ifd``                   Cherry LLM: drop IFD >= 1, then the highest IFD (:mod:`.ifd`)
``longest``               the longest responses, a baseline (:mod:`.longest`)
``quality-coverage``      keep the best share by IFD, then facility location
``quality-fl``            facility location plus λ x quality (rank of IFD) (:mod:`.quality_fl`)
========================  ===================================================================

Near-duplicate removal before any method is :mod:`.dedup`.

>>> from coreselect.selection import make_selector
>>> make_selector("kcenter", n_select=2).name
'kcenter'
"""

from __future__ import annotations

from coreselect.selection.base import (
    Selector,
    available_methods,
    get_selector_class,
    make_selector,
    register,
)
from coreselect.selection.facility_location import FacilityLocation, facility_location_greedy
from coreselect.selection.ifd import IFDSelection, ifd_order
from coreselect.selection.kcenter import KCenterGreedy, kcenter_greedy
from coreselect.selection.kmeans_centroid import KMeansCentroid, kmeans_centroid_selection
from coreselect.selection.longest import Longest, longest_order
from coreselect.selection.ltd import LTD, ltd_selection
from coreselect.selection.neuron_coverage import NeuronCoverage, max_coverage_greedy
from coreselect.selection.quality_coverage import QualityCoverage
from coreselect.selection.quality_fl import QualityFacilityLocation
from coreselect.selection.random import RandomSelection, random_selection
from coreselect.selection.similarity_filter import SimilarityFilter, similarity_filter

__all__ = [
    "LTD",
    "FacilityLocation",
    "IFDSelection",
    "KCenterGreedy",
    "KMeansCentroid",
    "Longest",
    "NeuronCoverage",
    "QualityCoverage",
    "QualityFacilityLocation",
    "RandomSelection",
    "Selector",
    "SimilarityFilter",
    "available_methods",
    "facility_location_greedy",
    "get_selector_class",
    "ifd_order",
    "kcenter_greedy",
    "kmeans_centroid_selection",
    "longest_order",
    "ltd_selection",
    "make_selector",
    "max_coverage_greedy",
    "random_selection",
    "register",
    "similarity_filter",
]
