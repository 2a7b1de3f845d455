"""Collection and partition names differing only in case are different names, everywhere."""

from __future__ import annotations

import pytest

from labkit.bench import faults
from labkit.bench.ephemeral import EphemeralCluster

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_names_that_differ_only_in_case_are_distinct(lab) -> None:
    with EphemeralCluster(lab, "fd-case", ro=1, router=True) as ec:
        c = ec.client  # through the router: writes go to rw, searches to the read node
        faults.new_collection(c, "CaseA")
        assert c.insert("CaseA", faults.vectors(100, 1))[0].OK()
        assert c.flush(["CaseA"]).OK()
        assert not c.has_collection("casea")[1]
        faults.new_collection(c, "casea")  # not "already exists"
        assert c.insert("casea", faults.vectors(10, 2))[0].OK()
        assert c.flush(["casea"]).OK()
        assert c.count_entities("CaseA")[1] == 100 and c.count_entities("casea")[1] == 10
        q = faults.vectors(1, 3)
        for name, rows in (("CaseA", 100), ("casea", 10)):
            st, res = c.search(name, 200, q, params={})
            assert st.OK(), st.message
            assert len(res[0]) == rows
        assert c.create_partition("CaseA", "P1").OK()
        assert c.create_partition("CaseA", "p1").OK()
        assert sorted(p.tag for p in c.list_partitions("CaseA")[1]) == ["P1", "_default", "p1"]
        assert c.drop_collection("casea").OK()
        assert c.has_collection("CaseA")[1] and not c.has_collection("casea")[1]
        assert c.count_entities("CaseA")[1] == 100
        st, res = c.search("CaseA", 5, q, params={})
        assert st.OK() and len(res[0]) == 5
        assert c.drop_collection("CaseA").OK()
