# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of the unmodified libvirt-vm-xml-transformer binary; included from
# tests/e2e/CMakeLists.txt (uses GPUH_SYS_PYTHON3, PROJECT_SOURCE_DIR, PROJECT_BINARY_DIR).
#
#   transformer/<case>           one per entry of fixtures/domains/cases.json (a few of them also
#                                in every call form: --forms)
#   transformer/explain-<case>   --explain on a few of them
#   transformer/concurrency, transformer/capacity, transformer/hostile, transformer/cli,
#   transformer/reservations
#   transformer/cases-json       the case list itself (fields, files, hosts)
#   transformer/goldens          the golden outputs against our schema, libvirt's schema and virsh
#   transformer/huge-<case>      huge documents: bounded work (test_huge.py)
#
# Labels (tests/README.md, "Labels and builds"): the tests that run the binary are 'c' (the
# ASan/UBSan build runs them); those that also run it in every call form (--forms) and the
# concurrency, capacity, mode, hostile, cli, reservation and old-agent tests are 'threads' too
# (the binary scans the host with a thread pool: the TSan build runs them). The other cases run
# the same scan of the same fixture hosts (discovery/<host> runs each host's scan under TSan) and
# differ in selection, which runs in one thread: TSan has nothing more to see there. cases-json
# and goldens run no binary (plain build only); the huge documents run no threaded code of their
# own ('c' only).
if(NOT TARGET libvirt-vm-xml-transformer)
  message(STATUS "gpuhooks: no libvirt-vm-xml-transformer target, its e2e tests are not registered")
  return()
endif()

set(GPUH_TRANSFORMER_E2E ${GPUH_SYS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_transformer.py
    --bin $<TARGET_FILE:libvirt-vm-xml-transformer> --hosts ${PROJECT_BINARY_DIR}/fixtures/hosts
    --src ${PROJECT_SOURCE_DIR})
# Cases also run with --explain: one per request source and mode, plus a failure. Names missing
# from cases.json are left out; when none is left, the first two 'ok' cases and the first 'error'.
set(GPUH_TRANSFORMER_EXPLAIN_CASES
    cs423-extraconfig-request-first-metadata  # metadata request, one mdev
    request-mdev-a2-4q-x2             # error: two asked, the GPU's framebuffer holds one more
    request-numa-vcpupin-v100         # passthrough, NUMA preference from <vcpupin>
    cs421-pci-v100                    # CloudStack's own hostdev
    cs423-rule-service-offering       # a config rule
    request-numa-require-too-few-v100 # error: too few free
)
# Cases also called in every other way the binary takes a domain (test_transformer.py --forms:
# the CloudStack argv form, as "$(cat FILE)", stdin, --no-libvirt with the XML files): one per
# request source and device kind, a document without a request and one without a final newline,
# and errors (one through the argv form's own parser, one not in the CloudStack form at all).
# The other cases run as a file only: the forms meet the same code after reading the document.
# Names missing from cases.json are left out; when none is left, the first two 'ok' cases and
# the first 'error'.
set(GPUH_TRANSFORMER_FORM_CASES
    real-03-dumpxml-no-gpu                   # no request: byte-identical
    real-04-dumpxml-extraconfig-no-newline   # no final newline
    cs421-pci-v100                           # CloudStack's own hostdev, passthrough
    cs421-mdev-a2-own                        # CloudStack's own mdev
    cs423-extraconfig-request-first-metadata # metadata request, one mdev
    cs423-rule-service-offering              # a config rule
    request-vendor-vgpu-l40s-8q              # NVIDIA vendor-specific vGPU VF
    request-vf-s7150v                        # SR-IOV VF
    request-numa-vcpupin-v100                # passthrough, NUMA preference from <vcpupin>
    request-numa-require-too-few-v100        # error: too few free
    hostile-xxe-file-entity                  # error: refused by the parser
    hostile-whitespace-only                  # error: not the CloudStack form
)

set(gpuh_cases_file ${PROJECT_SOURCE_DIR}/fixtures/domains/cases.json)
set(gpuh_transformer_tests)
if(EXISTS ${gpuh_cases_file})
  # Re-configure when the case list changes.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${gpuh_cases_file})
  file(READ ${gpuh_cases_file} gpuh_cases_json)
  string(JSON gpuh_n ERROR_VARIABLE gpuh_err LENGTH "${gpuh_cases_json}")
  if(gpuh_err)
    # A broken list must not break the build: transformer/cases-json reports it.
    message(WARNING "fixtures/domains/cases.json: ${gpuh_err}; no per-case transformer tests")
    set(gpuh_n 0)
  endif()
  set(gpuh_ok_cases)
  set(gpuh_error_cases)
  set(gpuh_seen)
  if(gpuh_n GREATER 0)
    math(EXPR gpuh_last "${gpuh_n} - 1")
    foreach(i RANGE ${gpuh_last})
      string(JSON gpuh_name ERROR_VARIABLE gpuh_err GET "${gpuh_cases_json}" ${i} name)
      string(JSON gpuh_expect ERROR_VARIABLE gpuh_err2 GET "${gpuh_cases_json}" ${i} expect)
      if(gpuh_err OR NOT gpuh_name MATCHES "^[A-Za-z0-9._-]+$" OR gpuh_name IN_LIST gpuh_seen)
        message(WARNING "fixtures/domains/cases.json: entry ${i} has a missing, odd or repeated name "
                        "('${gpuh_name}'); skipped (transformer/cases-json reports it)")
        continue()
      endif()
      list(APPEND gpuh_seen ${gpuh_name})
      list(APPEND gpuh_transformer_tests transformer/${gpuh_name})
      if(gpuh_expect STREQUAL "ok")
        list(APPEND gpuh_ok_cases ${gpuh_name})
      elseif(gpuh_expect STREQUAL "error")
        list(APPEND gpuh_error_cases ${gpuh_name})
      endif()
    endforeach()
  endif()

  set(gpuh_forms)
  foreach(gpuh_name IN LISTS GPUH_TRANSFORMER_FORM_CASES)
    if(gpuh_name IN_LIST gpuh_seen)
      list(APPEND gpuh_forms ${gpuh_name})
    endif()
  endforeach()
  if(NOT gpuh_forms)
    list(SUBLIST gpuh_ok_cases 0 2 gpuh_forms)
    list(SUBLIST gpuh_error_cases 0 1 gpuh_forms_err)
    list(APPEND gpuh_forms ${gpuh_forms_err})
  endif()
  foreach(gpuh_name IN LISTS gpuh_seen)
    if(gpuh_name IN_LIST gpuh_forms)
      add_test(NAME transformer/${gpuh_name} COMMAND ${GPUH_TRANSFORMER_E2E} case ${gpuh_name} --forms)
    else()
      add_test(NAME transformer/${gpuh_name} COMMAND ${GPUH_TRANSFORMER_E2E} case ${gpuh_name})
    endif()
  endforeach()

  set(gpuh_explain)
  foreach(gpuh_name IN LISTS GPUH_TRANSFORMER_EXPLAIN_CASES)
    if(gpuh_name IN_LIST gpuh_seen)
      list(APPEND gpuh_explain ${gpuh_name})
    endif()
  endforeach()
  if(NOT gpuh_explain)
    list(SUBLIST gpuh_ok_cases 0 2 gpuh_explain)
    list(SUBLIST gpuh_error_cases 0 1 gpuh_explain_err)
    list(APPEND gpuh_explain ${gpuh_explain_err})
  endif()
  foreach(gpuh_name IN LISTS gpuh_explain)
    add_test(NAME transformer/explain-${gpuh_name} COMMAND ${GPUH_TRANSFORMER_E2E} explain ${gpuh_name})
    list(APPEND gpuh_transformer_tests transformer/explain-${gpuh_name})
  endforeach()
else()
  message(WARNING "fixtures/domains/cases.json is missing; no per-case transformer tests")
endif()

foreach(t concurrency capacity vgpu-modes hostile cli reservations old-agents)
  add_test(NAME transformer/${t} COMMAND ${GPUH_TRANSFORMER_E2E} ${t})
  list(APPEND gpuh_transformer_tests transformer/${t})
endforeach()
set_tests_properties(${gpuh_transformer_tests} PROPERTIES LABELS "e2e;c;threads;nofuse" TIMEOUT 180)
# one selection case each, through the same scans: ASan+UBSan, not TSan (above)
set(gpuh_single_thread_cases)
foreach(t IN LISTS gpuh_transformer_tests)
  string(REGEX REPLACE "^transformer/(explain-)?" "" gpuh_case ${t})
  if(t MATCHES "^transformer/explain-" OR (gpuh_case IN_LIST gpuh_seen AND NOT gpuh_case IN_LIST gpuh_forms))
    list(APPEND gpuh_single_thread_cases ${t})
  endif()
endforeach()
if(gpuh_single_thread_cases)
  set_tests_properties(${gpuh_single_thread_cases} PROPERTIES LABELS "e2e;c;nofuse")
endif()
foreach(t cases-json goldens)
  add_test(NAME transformer/${t} COMMAND ${GPUH_TRANSFORMER_E2E} ${t})
  set_tests_properties(transformer/${t} PROPERTIES LABELS "e2e;nofuse" TIMEOUT 180)
endforeach()

# Huge documents under the 4 MiB limit (test_huge.py): both hooks within 10 s of CPU each, where the
# quadratic code they guard against took 9 to 26 s here.
if(TARGET libvirt-vm-state-change)
  foreach(case vcpupin wide hostdevs record)
    add_test(NAME transformer/huge-${case}
             COMMAND ${GPUH_SYS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_huge.py
                     --transformer $<TARGET_FILE:libvirt-vm-xml-transformer> --hook $<TARGET_FILE:libvirt-vm-state-change>
                     --hosts ${PROJECT_BINARY_DIR}/fixtures/hosts --src ${PROJECT_SOURCE_DIR} ${case})
    set_tests_properties(transformer/huge-${case} PROPERTIES LABELS "e2e;c;nofuse" COST 10 TIMEOUT 180)
  endforeach()
endif()
