# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of vGPU layouts (docs/layouts.md): gpudiscovery, the transformer and the
# state-change hook on fixture hosts under the FUSE sysfs emulator, one CloudStack cycle per kind
# of GPU. Labels: they run our binaries ('c'), mount the emulator ('fuse'), and scan the host with
# a thread pool ('threads'); each exits 77 (skipped) where FUSE cannot be used.
set(GPUH_LAYOUTS_E2E ${GPUH_SYS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_layouts.py
    --discovery $<TARGET_FILE:gpudiscovery> --transformer $<TARGET_FILE:libvirt-vm-xml-transformer>
    --hook $<TARGET_FILE:libvirt-vm-state-change>
    --hosts ${PROJECT_BINARY_DIR}/fixtures/hosts --src ${PROJECT_SOURCE_DIR})
foreach(case vendor mixed nofit vfmdev pfmdev stable)
  add_test(NAME layouts/${case} COMMAND ${GPUH_LAYOUTS_E2E} ${case})
  set_tests_properties(layouts/${case} PROPERTIES LABELS "e2e;c;fuse" TIMEOUT 300 SKIP_RETURN_CODE 77)
endforeach()
# Under ASan+UBSan only the mdev-on-VF cycle (layouts/vfmdev): the others run in the plain build
# only, as they repeat code paths that ASan+UBSan see there, in mig/h100-cycle (a vendor VF slot
# through the binaries), unit/test_layout (resolution) and unit/test_sc_roundtrip (prepare and
# release of every kind) (tests/run's time: tests/README.md)
set_tests_properties(layouts/vendor layouts/pfmdev layouts/mixed layouts/nofit layouts/stable
                     PROPERTIES LABELS "e2e;fuse")
