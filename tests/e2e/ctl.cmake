# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of gpuhooksctl and of the inventory's capacity numbers (issue 12). 'release'
# and 'reconcile' change devices under the FUSE sysfs emulator (exit 77, skipped, without it);
# the others read the fixture hosts as they are.
set(CTL ${GPUH_SYS_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/test_ctl.py
    --ctl $<TARGET_FILE:gpuhooksctl> --discovery $<TARGET_FILE:gpudiscovery>
    --hook $<TARGET_FILE:libvirt-vm-state-change> --transformer $<TARGET_FILE:libvirt-vm-xml-transformer>
    --hosts ${PROJECT_BINARY_DIR}/fixtures/hosts --src ${PROJECT_SOURCE_DIR})
# Labels: all run our binaries ('c'). Not 'threads': the host scan's pool is ThreadSanitizer's
# through discovery/*, and the TSan build does not build gpuhooksctl (tests/run).
foreach(case capacity table status slots plan check cli)
  add_test(NAME ctl/${case} COMMAND ${CTL} ${case})
  set_tests_properties(ctl/${case} PROPERTIES LABELS "e2e;c;nofuse" TIMEOUT 300)
endforeach()
foreach(case release reconcile)
  add_test(NAME ctl/${case} COMMAND ${CTL} ${case})
  set_tests_properties(ctl/${case} PROPERTIES LABELS "e2e;c;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
endforeach()
