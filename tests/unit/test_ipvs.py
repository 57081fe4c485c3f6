"""Reading a director's IPVS table from ipvsadm's output."""

from __future__ import annotations

from halab.prove import ipvs


def test_ipvs_tables_and_stats_parse():
    table = ipvs.parse(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  172.25.1.100:80 rr\n  -> 172.25.1.101:80              Route   1      0          53\n"
        "  -> 172.25.1.102:80              Route   2      0          54\n"
    )
    service = table[("TCP", "172.25.1.100", 80)]
    assert service.scheduler == "rr"
    assert [(d.address, d.method, d.weight, d.active, d.inactive) for d in service.destinations] == [
        ("172.25.1.101", "Route", 1, 0, 53),
        ("172.25.1.102", "Route", 2, 0, 54),
    ]
    stats = ipvs.parse(
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
        "TCP  172.25.1.100:80                   107      12K        0    37682        0\n"
        "  -> 172.25.1.101:80                    54      6K         0    18841        0\n"
    )
    assert stats[("TCP", "172.25.1.100", 80)].stats == {
        "conns": 107,
        "inpkts": 12000,
        "outpkts": 0,
        "inbytes": 37682,
        "outbytes": 0,
    }
    assert stats[("TCP", "172.25.1.100", 80)].destination_stats == {
        "172.25.1.101:80": {"conns": 54, "inpkts": 6000, "outpkts": 0, "inbytes": 18841, "outbytes": 0}
    }
    assert stats[("TCP", "172.25.1.100", 80)].destinations == []
