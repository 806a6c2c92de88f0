//! Win32 error codes that Service Control Manager events name as `%%NNNN`.
//!
//! The SCM writes the error as an insertion string `%%1058` that the event viewer expands
//! through the system message table. We are offline on Linux with no message table, so we
//! carry the English text of the codes that occur in service start failures. Sources: the
//! Win32 "System Error Codes" reference (learn.microsoft.com, winerror.h); texts as Windows
//! renders them, with the `%1` insert of 193 dropped. Unknown codes stay numbers.

/// English message of a Win32 error code, when we carry it. An HRESULT that wraps a Win32
/// code (`0x8007xxxx`, as in `%%2147942414` = 0x8007000E, seen in a real 7023) gives the
/// message of the code it wraps.
pub fn message(code: u32) -> Option<&'static str> {
    if let Some(inner) = win32_of_hresult(code) {
        return message(inner);
    }
    TABLE
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|i| TABLE[i].1)
}

/// The Win32 code inside an HRESULT of FACILITY_WIN32 (`0x8007xxxx`).
pub fn win32_of_hresult(code: u32) -> Option<u32> {
    (code & 0xffff_0000 == 0x8007_0000).then_some(code & 0xffff)
}

/// Sorted by code for the binary search; a unit test keeps it sorted.
static TABLE: &[(u32, &str)] = &[
    (2, "The system cannot find the file specified."),
    (3, "The system cannot find the path specified."),
    (5, "Access is denied."),
    (
        8,
        "Not enough memory resources are available to process this command.",
    ),
    (
        14,
        "Not enough memory resources are available to complete this operation.",
    ),
    (21, "The device is not ready."),
    (31, "A device attached to the system is not functioning."),
    (87, "The parameter is incorrect."),
    (126, "The specified module could not be found."),
    (193, "The file is not a valid Win32 application."),
    (
        577,
        "Windows cannot verify the digital signature for this file. A recent hardware or \
         software change might have installed a file that is signed incorrectly or damaged, or \
         that might be malicious software from an unknown source.",
    ),
    (
        1053,
        "The service did not respond to the start or control request in a timely fashion.",
    ),
    (1054, "A thread could not be created for the service."),
    (1055, "The service database is locked."),
    (1056, "An instance of the service is already running."),
    (
        1057,
        "The account name is invalid or does not exist, or the password is invalid for the \
         account name specified.",
    ),
    (
        1058,
        "The service cannot be started, either because it is disabled or because it has no \
         enabled devices associated with it.",
    ),
    (1059, "Circular service dependency was specified."),
    (
        1060,
        "The specified service does not exist as an installed service.",
    ),
    (
        1061,
        "The service cannot accept control messages at this time.",
    ),
    (1062, "The service has not been started."),
    (
        1063,
        "The service process could not connect to the service controller.",
    ),
    (
        1064,
        "An exception occurred in the service when handling the control request.",
    ),
    (
        1066,
        "The service has returned a service-specific error code.",
    ),
    (1067, "The process terminated unexpectedly."),
    (1068, "The dependency service or group failed to start."),
    (1069, "The service did not start due to a logon failure."),
    (
        1070,
        "After starting, the service hung in a start-pending state.",
    ),
    (1072, "The specified service has been marked for deletion."),
    (
        1075,
        "The dependency service does not exist or has been marked for deletion.",
    ),
    (
        1077,
        "No attempts to start the service have been made since the last boot.",
    ),
    (
        1079,
        "The account specified for this service is different from the account specified for \
         other services running in the same process.",
    ),
    (1275, "This driver has been blocked from loading."),
    (1326, "The user name or password is incorrect."),
    (
        1385,
        "Logon failure: the user has not been granted the requested logon type at this computer.",
    ),
    (
        1450,
        "Insufficient system resources exist to complete the requested service.",
    ),
    (
        1455,
        "The paging file is too small for this operation to complete.",
    ),
    (1722, "The RPC server is unavailable."),
    (
        1792,
        "An attempt was made to logon, but the network logon service was not started.",
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn table_is_sorted_and_unique() {
        assert!(super::TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn known_and_unknown() {
        assert!(super::message(1058)
            .unwrap()
            .starts_with("The service cannot be started"));
        assert_eq!(super::message(424242), None);
        assert_eq!(super::message(0x8007000e), super::message(14));
    }
}
