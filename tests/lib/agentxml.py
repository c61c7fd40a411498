# SPDX-License-Identifier: Apache-2.0
"""What CloudStack's KVM agent writes into a domain XML for a GPU, for the end-to-end tests.

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from agentxml import hostdev_pci, hostdev_mdev, agent_xml

The hostdev forms are LibvirtGpuDef's (apache/cloudstack, plugins/hypervisors/kvm): type='pci'
managed='no' for a GPU or an NVIDIA vGPU VF, type='mdev' model='vfio-pci' for an mdev.
"""
import os


def hostdev_pci(bdf):
    """The hostdev of PCI function @bdf ("DDDD:BB:SS.F")."""
    d, b, sf = bdf.split(":")
    s, f = sf.split(".")
    return ("<hostdev mode='subsystem' type='pci' managed='no' display='off'>\n  <driver name='vfio'/>\n"
            "  <source>\n    <address domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'/>\n  </source>\n"
            "</hostdev>\n" % (d, b, s, f))


def hostdev_mdev(uuid):
    """The hostdev of mdev @uuid."""
    return ("<hostdev mode='subsystem' type='mdev' model='vfio-pci' display='off'>\n  <source>\n"
            "    <address uuid='%s'/>\n  </source>\n</hostdev>\n" % uuid)


def agent_xml(src, hostdev):
    """The agent-form XML of fixture domain 01 (SRC/fixtures/domains) with @hostdev at the end of
    its last <devices>."""
    with open(os.path.join(src, "fixtures", "domains", "01-agent-i-2-154-VM-cs4.19.xml")) as f:
        xml = f.read()
    i = xml.rindex("</devices>")
    return xml[:i] + hostdev + xml[i:]
