"""A small, well-formed xclbin for the emulated U250 card.

It carries only the metadata sections pynq's own parser (pynq.pl_server.xclbin_parser) reads:
EMBEDDED_METADATA (the kernel: ports, args, instance), MEM_TOPOLOGY, IP_LAYOUT and
CONNECTIVITY, laid out with pynq's ctypes mirror of xclbin.h (pynq._3rdparty.xclbin), so the
bytes are what `xclbinutil` would write for the same design minus the bitstream.

The kernel is the one of Xilinx/ResNet50-PYNQ compile/kernel.xml: `resnet50`
(xilinx.com:hls:resnet50:1.0), instance `resnet50_1`, args in (0x10), out (0x1C),
weightsmem (0x28), numReps (0x34). Memories: the U250 shell's DDR banks bank0..bank3 and a
2 MiB `PLRAM[0]` (link/setup_plram.tcl), tagged as the shell tags them (pynq names the overlay
attribute `PLRAM0`). Connectivity as the release links it (link/Makefile): the weights port
`m_axi_gmem2` reaches PLRAM[0] only (`--sp resnet50_1.m_axi_gmem2:PLRAM[0]`, where the release
notebook and host/infer_pynq_threaded.py allocate the weights); in and out are not named in
the link, and reach DDR bank 0, where the reference host code allocates them.
"""

from __future__ import annotations

import ctypes
import hashlib
import struct
from dataclasses import dataclass
from xml.sax.saxutils import escape

from pynq._3rdparty import xclbin as x

from vidpipe.hw.base import RESNET50_VLNV, U250_SHELL

KERNEL = "resnet50"
INSTANCE = "resnet50_1"
PLRAM = "PLRAM[0]"
CU_BASE = 0x1800000
CU_RANGE = 0x1000
DDR_SIZE = 16 << 30
PLRAM_SIZE = 2 << 20
DDR_BASE = 0x4000000000  # where the shell maps bank0; bank i at DDR_BASE + i * DDR_STRIDE
DDR_STRIDE = 0x1000000000
PLRAM_BASE = 0x3000000000


@dataclass(frozen=True)
class Arg:
    name: str
    port: str
    offset: int
    size: int
    type: str
    memories: tuple[str, ...]  # empty for scalars


ARGS = (
    Arg("in", "M_AXI_GMEM0", 0x10, 8, "ap_uint<512>*", ("bank0",)),
    Arg("out", "M_AXI_GMEM1", 0x1C, 8, "ap_uint<32>*", ("bank0",)),
    Arg("weightsmem", "M_AXI_GMEM2", 0x28, 8, "ap_uint<512>*", (PLRAM,)),
    Arg("numReps", "S_AXI_CONTROL", 0x34, 4, "uint", ()),
)
# (tag, xclbin MEM_TYPE, base address, size in bytes)
MEMORIES = (
    *((f"bank{i}", x.MEM_TYPE.MEM_DDR4, DDR_BASE + i * DDR_STRIDE, DDR_SIZE) for i in range(4)),
    (PLRAM, x.MEM_TYPE.MEM_DRAM, PLRAM_BASE, PLRAM_SIZE),
)


def _metadata_xml(vlnv: str = RESNET50_VLNV, args: tuple[Arg, ...] = ARGS) -> bytes:
    """EMBEDDED_METADATA as v++ writes it (the subset pynq's parser reads)."""
    ports = "".join(
        f'<port name="{p}" mode="master" range="0xFFFFFFFF" dataWidth="{w}" portType="addressable" base="0x0"/>'
        for p, w in (("M_AXI_GMEM0", 512), ("M_AXI_GMEM1", 32), ("M_AXI_GMEM2", 512))
    )
    ports += (
        f'<port name="S_AXI_CONTROL" mode="slave" range="{CU_RANGE:#x}" dataWidth="32" '
        'portType="addressable" base="0x0"/>'
    )
    arg_xml = "".join(
        f'<arg name="{a.name}" addressQualifier="{1 if a.memories else 0}" id="{i}" port="{a.port}" '
        f'size="{a.size:#x}" offset="{a.offset:#x}" hostOffset="0x0" hostSize="{a.size:#x}" type="{escape(a.type)}"/>'
        for i, a in enumerate(args)
    )
    remap = f'<addrRemap base="{CU_BASE:#x}" range="{CU_RANGE:#x}" port="S_AXI_CONTROL"/>'
    instance = f'<instance name="{INSTANCE}">{remap}</instance>'
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<project name="{KERNEL}"><platform vendor="xilinx" boardid="u250" name="{U250_SHELL}">'
        '<device name="fpga0"><core name="OCL_REGION_0" target="sw_emu" type="clc_region">'
        f'<kernel name="{KERNEL}" language="ip" vlnv="{vlnv}" hwControlProtocol="ap_ctrl_hs">'
        f"{ports}{arg_xml}{instance}</kernel></core></device></platform></project>\n"
    )
    return xml.encode()


def _array_section(struct_type: type[ctypes.Structure], field: str, items: list[ctypes.Structure]) -> bytes:
    """A `{m_count; T array[]}` section: count, padding up to the array's offset, the items."""
    offset = getattr(struct_type, field).offset
    return struct.pack("<i", len(items)).ljust(offset, b"\0") + b"".join(bytes(i) for i in items)


def _mem_topology() -> bytes:
    items = []
    for tag, mtype, base, size in MEMORIES:
        m = x.mem_data()
        m.m_type, m.m_used, m.m_size, m.m_base_address = mtype, 1, size // 1024, base
        m.m_tag = tag.encode()
        items.append(m)
    return _array_section(x.mem_topology, "m_mem_data", items)


def _ip_layout() -> bytes:
    ip = x.ip_data()
    ip.m_type, ip.properties, ip.m_base_address = x.IP_TYPE.IP_KERNEL, 1, CU_BASE  # ap_ctrl_hs, interrupt
    name = f"{KERNEL}:{INSTANCE}".encode()
    ctypes.memmove(ip.m_name, name, len(name))
    return _array_section(x.ip_layout, "m_ip_data", [ip])


def _connectivity() -> bytes:
    tags = [m[0] for m in MEMORIES]
    items = []
    for arg_index, arg in enumerate(ARGS):
        for mem in arg.memories:
            c = x.connection()
            c.arg_index, c.m_ip_layout_index, c.mem_data_index = arg_index, 0, tags.index(mem)
            items.append(c)
    return _array_section(x.connectivity, "m_connection", items)


def build_xclbin(shell: str = U250_SHELL, build: str = "", vlnv: str = RESNET50_VLNV,
                 args: tuple[Arg, ...] = ARGS) -> bytes:
    """The whole file: axlf header, section headers, 8-byte aligned sections.

    `shell` is the platform it is built for; `build` names another build of the same design
    (it changes only the uuid); `vlnv` and `args` describe another kernel (tests of the binding)."""
    k = x.AXLF_SECTION_KIND
    sections = [
        (k.EMBEDDED_METADATA, "EMBEDDED_METADATA", _metadata_xml(vlnv, args)),
        (k.MEM_TOPOLOGY, "MEM_TOPOLOGY", _mem_topology()),
        (k.IP_LAYOUT, "IP_LAYOUT", _ip_layout()),
        (k.CONNECTIVITY, "CONNECTIVITY", _connectivity()),
    ]
    header_size = ctypes.sizeof(x.axlf) + (len(sections) - 1) * ctypes.sizeof(x.axlf_section_header)
    offset = (header_size + 7) & ~7
    headers, body = [], b""
    for kind, name, data in sections:
        h = x.axlf_section_header()
        h.m_sectionKind, h.m_sectionName = kind, name.encode()[:15]
        h.m_sectionOffset, h.m_sectionSize = offset + len(body), len(data)
        headers.append(bytes(h))
        body += data.ljust((len(data) + 7) & ~7, b"\0")
    top = x.axlf()
    top.m_magic = b"xclbin2"
    hdr = top.m_header
    hdr.m_length = offset + len(body)
    hdr.m_versionMajor, hdr.m_mode, hdr.m_numSections = 2, x.XCLBIN_MODE.XCLBIN_SW_EMU, len(sections)
    vbnv = shell.encode()
    ctypes.memmove(hdr.m_platformVBNV, vbnv, len(vbnv))
    uuid = hashlib.sha256(vbnv + build.encode() + body).digest()[:16]  # stable: same build, same uuid
    ctypes.memmove(hdr.uuid, uuid, 16)
    head = bytes(top)[: x.axlf.m_sections.offset] + b"".join(headers)
    return head.ljust(offset, b"\0") + body

