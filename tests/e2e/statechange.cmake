# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of libvirt-vm-state-change: the unmodified binaries on fixture hosts mounted
# under the FUSE sysfs emulator (tests/emu). Every case but 'protocol' exits 77 (skipped)
# where FUSE cannot be used.
set(SC ${GPUH_SYS_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/test_statechange.py
    --hook $<TARGET_FILE:libvirt-vm-state-change> --transformer $<TARGET_FILE:libvirt-vm-xml-transformer>
    --discovery $<TARGET_FILE:gpudiscovery>
    --hosts ${PROJECT_BINARY_DIR}/fixtures/hosts --src ${PROJECT_SOURCE_DIR})
# Labels: all run the binaries ('c'); every case but 'protocol' mounts the emulator ('fuse'). None
# runs threaded code of ours: the TSan build leaves them out (tests/README.md).
foreach(case protocol lifecycle roundtrip failures crash deadline budget late stuck occupancy record stranded parallel independent events grace reconnect holders group takeover sriov cloudstack
             names_dot names_untrimmed names_long vmname statedir old_agents)
  add_test(NAME statechange/${case} COMMAND ${SC} ${case})
  set_tests_properties(statechange/${case} PROPERTIES LABELS "e2e;c;fuse" TIMEOUT 900 SKIP_RETURN_CODE 77)
endforeach()
set_tests_properties(statechange/protocol PROPERTIES LABELS "e2e;c;nofuse")
# The longest first in a parallel ctest that has no CTestCostData.txt yet (about their seconds).
set_tests_properties(statechange/parallel statechange/crash PROPERTIES COST 20)
# Not under the sanitizers (no 'c'): kill -9 at every write, and 8 domains racing, replay under
# FUSE what the fake-kernel unit tests (test_sc_rollback, test_sc_release, label 'c') run in
# process under ASan+UBSan; the plain build runs them (tests/run's time: tests/README.md).
set_tests_properties(statechange/parallel statechange/crash PROPERTIES LABELS "e2e;fuse")
# Nor these, each with its in-process twin under ASan+UBSan: every kind of device there and back
# (test_sc_roundtrip), a write failing at each step (test_sc_rollback), takeover of a stale
# journal and SR-IOV undone (test_sc_release), forged records and CloudStack hostdevs held
# elsewhere (test_sc_checks).
set_tests_properties(statechange/roundtrip statechange/failures statechange/takeover statechange/sriov
                     statechange/record statechange/occupancy PROPERTIES LABELS "e2e;fuse")
set_tests_properties(statechange/roundtrip statechange/failures statechange/protocol PROPERTIES COST 10)
